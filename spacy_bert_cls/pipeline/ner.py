"""`bert_ner`: token classification (softmax over BILUO or BIO tags), decoded into valid spans.

Each token gets a distribution over tags; the entities are those of the most probable
*valid* tag sequence (constrained Viterbi, see decoding.py), so they are always
well-formed spans. Every entity carries a confidence in [0, 1]: the probability that
exactly this span has this label. It is readable as `ent._.confidence` and kept with
the entities in `doc.spans[spans_key]` (attrs["scores"]).
"""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..decoding import TagScheme, decode_entities

CONFIDENCE = "confidence"
if not Span.has_extension(CONFIDENCE):
    Span.set_extension(CONFIDENCE, default=None)

DEFAULT_MODEL = """
[model]
@architectures = "spacy-bert-cls.BertTagger.v1"
dropout = 0.1
nO = null

[model.tok2vec]
@architectures = "spacy-bert-cls.BertListener.v1"
width = 384
upstream = "*"
grad_factor = 1.0

[model.tok2vec.pooling]
@layers = "reduce_first.v1"
"""


@Language.factory(
    "bert_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": Config().from_str(DEFAULT_MODEL)["model"],
        "scheme": "BILUO",
        "spans_key": "ents",
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_bert_ner(nlp: Language, name: str, model: Model, scheme: str, spans_key: Optional[str],
                  scorer: Optional[Callable]):
    """Create a `bert_ner` component.

    model: spacy-bert-cls.BertTagger.v1.
    scheme (str): "BILUO" or "BIO" tags.
    spans_key (Optional[str]): also keep the entities, with their confidences in
        attrs["scores"], in doc.spans[spans_key]; null: doc.ents only.
    """
    return BertEntityRecognizer(nlp.vocab, model, name, scheme=scheme, spans_key=spans_key, scorer=scorer)


class BertEntityRecognizer(TrainablePipe):
    def __init__(self, vocab: Vocab, model: Model, name: str = "bert_ner", *, scheme: str = "BILUO",
                 spans_key: Optional[str] = "ents", scorer: Optional[Callable] = None) -> None:
        TagScheme([], scheme)  # validates the scheme name
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {"labels": [], "scheme": scheme, "spans_key": spans_key}
        self._scheme: Optional[TagScheme] = None

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def scheme(self) -> TagScheme:
        if self._scheme is None or self._scheme.labels != list(self.labels) or self._scheme.scheme != self.cfg["scheme"]:
            self._scheme = TagScheme(self.labels, self.cfg["scheme"])
        return self._scheme

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label or "-" == label[:1]:
            raise ValueError(f"entity labels must be non-empty strings, got {label!r}")
        if label in self.labels:
            return 0
        if self.model.get_ref("output_layer").has_dim("nO"):
            raise ValueError(f"'{self.name}' is initialized; adding label {label!r} needs a new initialize")
        self.cfg["labels"].append(label)
        return 1

    def predict(self, docs: Iterable[Doc]) -> List[Floats2d]:
        docs = list(docs)
        if not docs:
            return []
        return self.model.predict(docs)

    def set_annotations(self, docs: Sequence[Doc], logits: List[Floats2d]) -> None:
        scheme = self.scheme
        key = self.cfg["spans_key"]
        for doc, doc_logits in zip(docs, logits):
            log_probs = _log_softmax(self.model.ops.to_numpy(doc_logits))
            whitespace = numpy.array([t.is_space for t in doc], dtype=bool)
            entities = decode_entities(log_probs, scheme, force_outside=whitespace)
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in entities]
            doc.ents = spans
            for span, (_, _, _, confidence) in zip(spans, entities):
                span._.set(CONFIDENCE, confidence)
            if key is not None:
                doc.spans[key] = SpanGroup(doc, name=key, spans=spans,
                                           attrs={"scores": [e[3] for e in entities]})

    def get_loss(self, examples: Iterable[Example], logits: List[Floats2d]):
        """Cross-entropy of the gold tag of every token whose annotation is known.

        RETURNS (loss, d_logits): the mean loss per labelled token and its gradient.
        """
        validate_examples(examples, "BertEntityRecognizer.get_loss")
        scheme = self.scheme
        golds = [scheme.tag_ids(eg.get_aligned_ner()) for eg in examples]
        n = max(1, sum(int((g >= 0).sum()) for g in golds))
        loss = 0.0
        grads = []
        for gold, doc_logits in zip(golds, logits):
            log_probs = _log_softmax(self.model.ops.to_numpy(doc_logits))
            d = numpy.exp(log_probs)
            known = gold >= 0
            rows = numpy.nonzero(known)[0]
            loss -= float(log_probs[rows, gold[rows]].sum())
            d[rows, gold[rows]] -= 1.0
            d[~known] = 0.0
            grads.append(self.model.ops.asarray2f((d / n).astype("float32")))
        return loss / n, grads

    def update(self, examples: Iterable[Example], *, drop: float = 0.0,
               sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "BertEntityRecognizer.update")
        examples = list(examples)
        if not examples:
            return losses
        set_dropout_rate(self.model, drop)
        logits, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_logits = self.get_loss(examples, logits)
        backprop(d_logits)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *,
                   nlp: Optional[Language] = None, labels: Optional[Iterable[str]] = None) -> None:
        validate_get_examples(get_examples, "BertEntityRecognizer.initialize")
        if labels is None:
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(f"'{self.name}' has no labels: no entities in the training data and none given")
        docs = [eg.x for eg in islice(get_examples(), 10)]
        n_tags = len(self.scheme.tags)
        self.model.get_ref("output_layer").set_dim("nO", n_tags)
        self.model.initialize(X=docs, Y=[self.model.ops.alloc2f(len(doc), n_tags) for doc in docs])

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        validate_examples(examples, "BertEntityRecognizer.score")
        return self.scorer(examples)


def _log_softmax(logits: numpy.ndarray) -> numpy.ndarray:
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True) if logits.size else logits
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=-1, keepdims=True)) if logits.size else logits
