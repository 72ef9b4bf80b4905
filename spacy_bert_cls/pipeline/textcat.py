"""`bert_textcat`: BERT's own classification head (pooled [CLS], dropout, linear).

Exclusive classes (softmax) or multi-label (sigmoid). `doc.cats` holds
probabilities; multi-label decisions use one threshold per label, tuned on dev data
(`tune_thresholds`, the `spacy-bert-cls tune-thresholds` command, or the training
callback spacy-bert-cls.tune_thresholds.v1) or set by hand, saved with the pipeline.
"""
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import PRFScore, Scorer
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer
from thinc.types import Floats2d

from .shared import add_head_label, update_head

DEFAULT_MODEL = """
[model]
@architectures = "spacy-bert-cls.BertClassifier.v1"
exclusive_classes = true
dropout = 0.1
nO = null

[model.tok2vec]
@architectures = "spacy-bert-cls.BertDocListener.v1"
width = 384
upstream = "*"
reduce = "pooler"
grad_factor = 1.0
"""


@Language.factory(
    "bert_textcat",
    assigns=["doc.cats"],
    default_config={
        "model": Config().from_str(DEFAULT_MODEL)["model"],
        "threshold": 0.5,
        "scorer": {"@scorers": "spacy-bert-cls.textcat_scorer.v1"},
    },
    default_score_weights={"cats_score": 1.0, "cats_macro_f": None, "cats_macro_auc": None,
                           "cats_micro_f": None, "cats_f_per_type": None},
)
def make_bert_textcat(nlp: Language, name: str, model: Model, threshold: float, scorer: Optional[Callable]):
    """Create a `bert_textcat` component.

    model: spacy-bert-cls.BertClassifier.v1 (its `exclusive_classes` sets the mode).
    threshold (float): the decision threshold of a label that has none of its own
        (multi-label); per-label thresholds are set by tuning or `set_thresholds`.
    """
    return BertTextCategorizer(nlp.vocab, model, name, threshold=threshold, scorer=scorer)


class BertTextCategorizer(TrainablePipe):
    def __init__(self, vocab: Vocab, model: Model, name: str = "bert_textcat", *,
                 threshold: float = 0.5, scorer: Optional[Callable] = None) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {"labels": [], "threshold": float(threshold), "thresholds": {}}

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def exclusive(self) -> bool:
        return bool(self.model.attrs["exclusive_classes"])

    @property
    def thresholds(self) -> Dict[str, float]:
        """The decision threshold of every label (multi-label)."""
        return {label: float(self.cfg["thresholds"].get(label, self.cfg["threshold"])) for label in self.labels}

    def set_thresholds(self, thresholds: Dict[str, float]) -> None:
        if self.exclusive and thresholds:  # accepted, they changed nothing
            raise ValueError(f"'{self.name}' has exclusive classes (each text's top-scoring label): thresholds "
                             f"belong to a multi-label bert_textcat (exclusive_classes = false)")
        unknown = set(thresholds) - set(self.labels)
        if unknown:
            raise ValueError(f"'{self.name}' has no label(s) {sorted(unknown)}; labels: {list(self.labels)}")
        for label, value in thresholds.items():
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"threshold of {label!r} must be in [0, 1], got {value}")
        self.cfg["thresholds"].update({k: float(v) for k, v in thresholds.items()})

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"labels must be strings, got {label!r}")
        return add_head_label(self, label)

    def predict(self, docs: Iterable[Doc]) -> Floats2d:
        docs = list(docs)
        if not docs:
            return self.model.ops.alloc2f(0, len(self.labels))
        return self.model.predict(docs)

    def set_annotations(self, docs: Sequence[Doc], scores: Floats2d) -> None:
        scores = self.model.ops.to_numpy(scores)
        for doc, row in zip(docs, scores):
            doc.cats.update({label: float(p) for label, p in zip(self.labels, row)})

    def _check_exclusive(self, examples: Iterable[Example]) -> None:
        """Exclusive classes take one label a text (a softmax): a text with several is a
        ValueError, as spaCy's textcat (E895), not a wrong gradient."""
        if not self.exclusive:
            return
        for eg in examples:
            positive = sorted(label for label, value in eg.reference.cats.items() if value >= 0.5)
            if len(positive) > 1:
                raise ValueError(f"'{self.name}' has exclusive classes (one label a text), but the text "
                                 f"{eg.reference.text[:60]!r} has {len(positive)}: {', '.join(positive)}. For "
                                 f"multi-label data set exclusive_classes = false (configs/bert_textcat_multilabel.cfg)")

    def _truths(self, examples: Sequence[Example]):
        truths = numpy.zeros((len(examples), len(self.labels)), dtype="float32")
        known = numpy.zeros_like(truths)
        for i, eg in enumerate(examples):
            cats = eg.reference.cats
            for j, label in enumerate(self.labels):
                if label in cats:
                    truths[i, j] = float(cats[label])
                    known[i, j] = 1.0
        if self.exclusive:
            # A doc without a gold class is left out entirely (missing annotation).
            known *= (truths.sum(axis=1, keepdims=True) > 0)
        return truths, known

    def get_loss(self, examples: Iterable[Example], scores: Floats2d):
        """Cross-entropy (softmax) or binary cross-entropy (sigmoid), missing labels masked.

        RETURNS (loss, d_logits): the mean loss per doc and its gradient.
        """
        validate_examples(examples, "BertTextCategorizer.get_loss")
        examples = list(examples)
        self._check_exclusive(examples)
        truths, known = self._truths(examples)
        probs = self.model.ops.to_numpy(scores).astype("float32")
        n = max(1.0, float(known.any(axis=1).sum()))
        eps = 1e-7
        if self.exclusive:
            loss = -(truths * numpy.log(probs + eps) * known).sum() / n
        else:
            loss = -((truths * numpy.log(probs + eps) + (1 - truths) * numpy.log(1 - probs + eps)) * known).sum() / n
        d_logits = (probs - truths) * known / n
        return float(loss), self.model.ops.asarray2f(d_logits)

    def update(self, examples: Iterable[Example], *, drop: float = 0.0,
               sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """TrainablePipe.update, except that a batch of empty docs is learned from too
        (why: shared.update_head)."""
        return update_head(self, examples, drop=drop, sgd=sgd, losses=losses, method="BertTextCategorizer.update")

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *,
                   nlp: Optional[Language] = None, labels: Optional[Iterable[str]] = None,
                   thresholds: Optional[Dict[str, float]] = None) -> None:
        validate_get_examples(get_examples, "BertTextCategorizer.initialize")
        if labels is None:
            labels = sorted({label for eg in get_examples() for label in eg.reference.cats})
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(f"'{self.name}' has no labels: none in the training data's cats and none given")
        if len(self.labels) < 2 and self.exclusive:
            raise ValueError(f"'{self.name}' with exclusive classes needs at least 2 labels, got {list(self.labels)}")
        self._check_exclusive(get_examples())
        if thresholds:
            self.set_thresholds(thresholds)
        sample = list(islice(get_examples(), 10))
        docs = [eg.x for eg in sample]
        output_layer = self.model.get_ref("output_layer")
        output_layer.set_dim("nO", len(self.labels))
        self.model.initialize(X=docs, Y=self.model.ops.alloc2f(len(docs), len(self.labels)))
        if not self.exclusive:
            truths, known = self._truths(list(get_examples()))
            output_layer.set_param("b", self.model.ops.asarray1f(label_prior_logits(truths, known)))

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        validate_examples(examples, "BertTextCategorizer.score")
        return self.scorer(examples, labels=self.labels, exclusive=self.exclusive, thresholds=self.thresholds)


def label_prior_logits(truths: numpy.ndarray, known: numpy.ndarray, smoothing: float = 1.0) -> numpy.ndarray:
    """log(p / (1 - p)) of each label's share of positive training examples (add-one smoothed),
    from `_truths`' matrices (an example whose cats lack a label doesn't count for it).

    Multi-label heads start from these biases: every label's probability starts at its
    prior instead of 0.5, so the first steps of training go into telling the examples
    apart rather than into pushing 28 sigmoids down (rare labels would otherwise take
    hundreds of steps to leave "never").
    """
    positive = ((truths >= 0.5) * known).sum(axis=0, dtype="float64")
    prior = (positive + smoothing) / (known.sum(axis=0, dtype="float64") + 2 * smoothing)
    return numpy.log(prior / (1 - prior)).astype("float32")


def score_bert_cats(examples: Iterable[Example], *, labels: Sequence[str], exclusive: bool,
                    thresholds: Dict[str, float]) -> Dict:
    """spaCy's textcat scores; for multi-label, P/R/F use each label's own threshold.

    (spacy-bert-cls.textcat_scorer.v1). Exclusive classes: spaCy's score_cats as is.
    Examples without gold cats (an NER example in a joint corpus) are left out.
    """
    examples = [eg for eg in examples if eg.reference.cats]
    scores = Scorer.score_cats(examples, "cats", labels=labels, multi_label=not exclusive, threshold=0.5)
    if exclusive or not labels:
        return scores
    per_label = {label: PRFScore() for label in labels}
    micro = PRFScore()
    for eg in examples:
        gold, pred = eg.reference.cats, eg.predicted.cats
        for label in labels:
            if label not in gold:
                continue
            predicted = pred.get(label, 0.0) >= thresholds[label]
            actual = gold[label] >= 0.5
            for prf in (per_label[label], micro):
                prf.tp += predicted and actual
                prf.fp += predicted and not actual
                prf.fn += actual and not predicted
    scores["cats_f_per_type"] = {label: prf.to_dict() for label, prf in per_label.items()}
    scores["cats_micro_p"], scores["cats_micro_r"], scores["cats_micro_f"] = micro.precision, micro.recall, micro.fscore
    scores["cats_macro_p"] = float(numpy.mean([p.precision for p in per_label.values()]))
    scores["cats_macro_r"] = float(numpy.mean([p.recall for p in per_label.values()]))
    scores["cats_macro_f"] = float(numpy.mean([p.fscore for p in per_label.values()]))
    scores["cats_score"] = scores["cats_macro_f"]
    scores["cats_score_desc"] = "macro F (per-label thresholds)"
    return scores


def make_textcat_scorer_v1() -> Callable:
    return score_bert_cats


def best_thresholds(probs: numpy.ndarray, truths: numpy.ndarray, known: Optional[numpy.ndarray] = None,
                    grid: Optional[numpy.ndarray] = None, keep: Optional[numpy.ndarray] = None) -> numpy.ndarray:
    """Per label, the threshold on the grid that maximises F1 (ties: the lowest such).

    probs, truths (ndarray[n_docs, n_labels]); known: 1 where the gold value exists.
    A label with no positive example has no F1 to maximise: it gets its value in `keep`
    (ndarray[n_labels], its threshold so far), 0.5 without one.
    """
    grid = numpy.round(numpy.arange(0.01, 1.0, 0.01), 2) if grid is None else grid
    known = numpy.ones_like(truths) if known is None else known
    actual = (truths >= 0.5) & (known > 0)
    predicted = (probs[None, :, :] >= grid[:, None, None]) & (known[None] > 0)  # [grid, doc, label]
    tp = (predicted & actual[None]).sum(axis=1)
    fp = (predicted & ~actual[None]).sum(axis=1)
    fn = (~predicted & actual[None]).sum(axis=1)
    f1 = numpy.where(2 * tp + fp + fn > 0, 2 * tp / numpy.maximum(2 * tp + fp + fn, 1), 0.0)
    best = grid[f1.argmax(axis=0)]
    return numpy.where(has_positive(truths, known), best, 0.5 if keep is None else keep)


def has_positive(truths: numpy.ndarray, known: numpy.ndarray) -> numpy.ndarray:
    """Per label (ndarray[n_labels] of bool), whether some document's known gold value is
    positive: a threshold can be tuned for such a label only."""
    return ((truths >= 0.5) & (known > 0)).any(axis=0)


def _multilabel_pipe(nlp: Language, component: str) -> "BertTextCategorizer":
    """The multi-label bert_textcat named `component`; a ValueError that says what is there instead."""
    if component not in nlp.pipe_names:
        raise ValueError(f"no component named '{component}' (the pipeline has {', '.join(nlp.pipe_names) or 'none'}): "
                         f"thresholds belong to a multi-label bert_textcat; name it with --component")
    pipe = nlp.get_pipe(component)
    if not isinstance(pipe, BertTextCategorizer):
        raise ValueError(f"'{component}' is a {nlp.get_pipe_meta(component).factory}, not a bert_textcat: thresholds "
                         f"belong to a multi-label bert_textcat (configs/bert_textcat_multilabel.cfg)")
    if pipe.exclusive:
        raise ValueError(f"'{component}' has exclusive classes (each text gets the top-scoring label): it has no "
                         f"thresholds to tune. They belong to a multi-label bert_textcat (exclusive_classes = false, "
                         f"configs/bert_textcat_multilabel.cfg)")
    return pipe


def tune_thresholds(nlp: Language, examples: Iterable[Example], component: str = "bert_textcat") -> Dict[str, float]:
    """Set each label's threshold of a multi-label `bert_textcat` to the one that maximises
    its F1 on `examples` (usually the dev set) and return them."""
    pipe = _multilabel_pipe(nlp, component)
    examples = [eg for eg in examples if eg.reference.cats]
    if not examples:
        raise ValueError("no examples with cats to tune thresholds on")
    docs = list(nlp.pipe(eg.reference.text for eg in examples))
    probs = numpy.array([[doc.cats.get(label, 0.0) for label in pipe.labels] for doc in docs], dtype="float32")
    truths, known = pipe._truths(examples)
    current = numpy.array([pipe.thresholds[label] for label in pipe.labels], dtype="float64")
    tuned = best_thresholds(probs, truths, known, keep=current)
    thresholds = {label: float(t) for label, t in zip(pipe.labels, tuned)}
    pipe.set_thresholds(thresholds)
    return thresholds


class TunedThresholds(NamedTuple):
    """What tune_pipeline_thresholds did: the thresholds, the data's macro F before and after,
    and the labels without a positive example in the data (their thresholds kept)."""

    thresholds: Dict[str, float]
    before: float
    after: float
    kept: List[str]


def tune_pipeline_thresholds(pipeline, data, output, component: str = "bert_textcat") -> TunedThresholds:
    """Load a pipeline, tune its thresholds on a data file, save it (atomically) to `output`:
    the pipeline's own folder, a new or empty one, or another pipeline's (an earlier run's);
    a ValueError, before any work, for any other existing path, and for a folder that holds
    the data file (the save would replace it)."""
    import spacy

    from ..checkpoint.hf import is_pipeline_folder
    from ..data.readers import create_corpus_reader_v1
    from ..errors import DataError
    from ..outputs import check_apart, check_folder_output
    from ..saving import save_pipeline

    check_folder_output(output, "--output")
    check_apart(output, [data], "--output")
    out = Path(output)
    other_files = out.is_dir() and any(out.iterdir()) and not is_pipeline_folder(out)
    if other_files and out.resolve() != Path(pipeline).resolve():
        raise ValueError(f"--output {output} is a folder of other files: name a new folder, or leave -o out to save "
                         f"into {pipeline}")
    nlp = spacy.load(pipeline)
    pipe = _multilabel_pipe(nlp, component)
    examples = [eg for eg in create_corpus_reader_v1(data, labels=list(pipe.labels))(nlp) if eg.reference.cats]
    if not examples:
        raise DataError(data, None, f"no examples with labels to tune {component}'s thresholds on: give its dev data "
                                    f"(JSONL {{\"text\", \"labels\"}} or .spacy with cats)")
    before = nlp.evaluate(examples)["cats_macro_f"]
    thresholds = tune_thresholds(nlp, examples, component)
    after = nlp.evaluate(examples)["cats_macro_f"]
    positive = has_positive(*pipe._truths(examples))
    # Written beside the target and swapped in: an interrupted save leaves the old pipeline whole.
    save_pipeline(nlp, output)
    return TunedThresholds(thresholds, before, after, [label for label, p in zip(pipe.labels, positive) if not p])


class ThresholdTuner:
    """[training.before_to_disk] callback: tune the thresholds on a dev file before each save."""

    def __init__(self, path, component: str = "bert_textcat", limit: int = 0) -> None:
        self.path = path
        self.component = component
        self.limit = limit

    def __call__(self, nlp: Language) -> Language:
        from ..data.readers import create_corpus_reader_v1

        pipe = nlp.get_pipe(self.component)
        reader = create_corpus_reader_v1(self.path, limit=self.limit, labels=list(pipe.labels))
        tune_thresholds(nlp, reader(nlp), self.component)
        return nlp


def make_threshold_tuner_v1(path, component: str = "bert_textcat", limit: int = 0) -> ThresholdTuner:
    """spacy-bert-cls.tune_thresholds.v1: per-label thresholds tuned on `path` at every save.

    Use as [training.before_to_disk] with path = ${paths.dev}: model-best and
    model-last then carry thresholds tuned on the dev set.
    """
    return ThresholdTuner(path, component=component, limit=limit)
