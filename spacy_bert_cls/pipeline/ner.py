"""`bert_ner`: token classification (softmax over BILUO or BIO tags), decoded into valid spans.

Each token gets a distribution over tags; the entities are those of the most probable
*valid* tag sequence (constrained Viterbi, see decoding.py), so they are always
well-formed spans. Every entity carries a confidence in [0, 1]: the probability that
exactly this span has this label. The entities and their confidences are kept in
`doc.spans[spans_key]` (attrs["scores"]; the key is "bert_ner" by default, the component's
usual name), which DocBin and to_bytes keep, and `ent._.confidence` reads them from there:
it stays right after a DocBin round trip without user data, and it is None for an entity
that another component (an entity_ruler after bert_ner) put in doc.ents.

Two other decoders follow HF's rule (TokenClassificationPipeline.group_entities: each
word takes the most probable tag of its first piece, adjacent words join by B-/I-, an
entity's score is the mean of its words' probabilities), for parity with `transformers`:
`decoder = "hf_first"` takes the words of BERT's pre-tokenizer, as
`transformers.pipeline(..., aggregation_strategy="first")` does on the raw text;
`decoder = "argmax"` takes spaCy's tokens as the words, as HF's training and seqeval
evaluation do on pre-split words (CoNLL).
"""
import logging
from itertools import islice
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.attrs import ENT_IOB, IS_SPACE, ORTH, SPACY
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer
from thinc.types import Floats2d

from ..decoding import TagScheme, decode_batch, first_piece_entities, hf_tag_names, log_softmax
from ..models.listener import BertListener
from ..tags import span_biluo
from ..tokenization.words import word_starts
from .shared import add_head_label, update_head

logger = logging.getLogger(__name__)

CONFIDENCE = "confidence"
# The span-group attribute that marks a group as a bert_ner's entities (its value: the
# component's name), so that `ent._.confidence` never reads another component's scores
# (spancat's groups have attrs["scores"] too).
GROUP_SOURCE = "component"


def entity_confidence(span: Span) -> Optional[float]:
    """The confidence a bert_ner gave this entity (same tokens, same label), read from its
    span group; None where no bert_ner predicted it."""
    for group in span.doc.spans.values():
        if GROUP_SOURCE not in group.attrs:
            continue
        for member, score in zip(group, group.attrs.get("scores", [])):
            if member.start == span.start and member.end == span.end and member.label == span.label:
                return score
    return None


def register_confidence_extension() -> None:
    """Span._.confidence, registered when a bert_ner is made, not at import: spaCy imports
    every plugin's factories in any process that makes a Language, and a global extension
    there could clash with another plugin's of the same name."""
    if not Span.has_extension(CONFIDENCE):
        Span.set_extension(CONFIDENCE, getter=entity_confidence)

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
        "spans_key": "bert_ner",
        "decoder": "constrained",
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_bert_ner(nlp: Language, name: str, model: Model, scheme: str, spans_key: Optional[str],
                  scorer: Optional[Callable], decoder: str = "constrained"):
    """Create a `bert_ner` component.

    model: spacy-bert-cls.BertTagger.v1.
    scheme (str): "BILUO" or "BIO" tags.
    spans_key (Optional[str]): keep the entities, with their confidences in
        attrs["scores"], in doc.spans[spans_key], where ent._.confidence reads them;
        null: doc.ents only, and no confidences.
    decoder (str): "constrained" (the most probable valid tag sequence, confidences by
        forward-backward); "hf_first" (HF's rule on BERT's words, as transformers.pipeline
        with aggregation_strategy="first", and its scores) or "argmax" (HF's rule on
        spaCy's tokens, as HF's evaluation on pre-split words).
    """
    return BertEntityRecognizer(nlp.vocab, model, name, scheme=scheme, spans_key=spans_key, scorer=scorer,
                                decoder=decoder)


class BertEntityRecognizer(TrainablePipe):
    def __init__(self, vocab: Vocab, model: Model, name: str = "bert_ner", *, scheme: str = "BILUO",
                 spans_key: Optional[str] = "bert_ner", scorer: Optional[Callable] = None,
                 decoder: str = "constrained") -> None:
        TagScheme([], scheme)  # validates the scheme name
        _check_decoder(decoder)
        register_confidence_extension()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {"labels": [], "scheme": scheme, "spans_key": spans_key, "decoder": decoder}
        self._scheme: Optional[TagScheme] = None

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def scheme(self) -> TagScheme:
        if self._scheme is None or self._scheme.labels != list(self.labels) or self._scheme.scheme != self.cfg["scheme"]:
            self._scheme = TagScheme(self.labels, self.cfg["scheme"])
        return self._scheme

    @property
    def decoder(self) -> str:
        """"constrained", "hf_first" or "argmax"; settable, and saved with the pipeline."""
        return self.cfg.get("decoder", "constrained")

    @decoder.setter
    def decoder(self, value: str) -> None:
        _check_decoder(value)
        self.cfg["decoder"] = value

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label or "-" == label[:1]:
            raise ValueError(f"entity labels must be non-empty strings, got {label!r}")
        return add_head_label(self, label)

    def predict(self, docs: Iterable[Doc]) -> List["TagScores"]:
        """Tag logits of each doc: per token, or with decoder hf_first per word piece (with
        the pieces' character offsets), as the decoder reads them."""
        docs = list(docs)
        if not docs:
            return []
        if self.decoder == "hf_first":
            return self._predict_pieces(docs)
        return [TagScores(logits) for logits in self.model.predict(docs)]

    def _predict_pieces(self, docs: List[Doc]) -> List["TagScores"]:
        listener = self.model.get_ref("tok2vec")
        if not isinstance(listener, BertListener):
            raise ValueError(f"'{self.name}': decoder hf_first needs the tagger's tok2vec to be a BertListener")
        output_layer = self.model.get_ref("output_layer")
        n_tags = len(self.scheme.tags)
        result = []
        for doc, output in zip(docs, listener.take_outputs(docs)):
            if output is None or output.piece_offsets is None:  # initialisation: no pieces yet
                result.append(TagScores(self.model.ops.alloc2f(0, n_tags), numpy.zeros((0, 2), dtype="int64")))
            else:
                result.append(TagScores(output_layer.predict(output.pieces), numpy.asarray(output.piece_offsets)))
        return result

    def set_annotations(self, docs: Sequence[Doc], scores: List["TagScores"]) -> None:
        """The entities of each doc, as the decoder reads `scores` (predict's): doc.ents,
        and doc.spans[spans_key] with their confidences."""
        key = self.cfg["spans_key"]
        found, unaligned_per_doc = _DECODE[self.decoder](self, docs, scores)
        for doc, entities, unaligned in zip(docs, found, unaligned_per_doc):
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in entities]
            doc.ents = spans
            if key is not None:
                attrs = {"scores": [e[3] for e in entities], GROUP_SOURCE: self.name}
                if unaligned:
                    attrs["unaligned"] = unaligned
                doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs=attrs)
        unaligned_batch = [(doc, u) for doc, unaligned in zip(docs, unaligned_per_doc) for u in unaligned]
        if unaligned_batch:
            _report_unaligned(self.name, unaligned_batch)

    def get_loss(self, examples: Iterable[Example], logits: List[Floats2d]):
        """Cross-entropy of the gold tag of every token whose annotation is known.

        RETURNS (loss, d_logits): the mean loss per labelled token and its gradient.
        """
        validate_examples(examples, "BertEntityRecognizer.get_loss")
        scheme = self.scheme
        golds = [_gold_tag_ids(scheme, eg) for eg in examples]
        n = max(1, sum(int((g >= 0).sum()) for g in golds))
        loss = 0.0
        grads = []
        for gold, doc_logits in zip(golds, logits):
            log_probs = log_softmax(self.model.ops.to_numpy(doc_logits))
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
        """TrainablePipe.update, except that a batch of empty docs is learned from too
        (why: shared.update_head)."""
        return update_head(self, examples, drop=drop, sgd=sgd, losses=losses, method="BertEntityRecognizer.update")

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
        output_layer = self.model.get_ref("output_layer")
        output_layer.set_dim("nO", n_tags)
        self.model.initialize(X=docs, Y=[self.model.ops.alloc2f(len(doc), n_tags) for doc in docs])
        output_layer.set_param("b", self.model.ops.asarray1f(self._tag_prior_logits(get_examples())))

    def _tag_prior_logits(self, examples: Iterable[Example], smoothing: float = 1.0) -> numpy.ndarray:
        """log of each tag's (add-one smoothed) share of the known gold tags: the output bias
        the head starts from, so that its first steps go into finding entities rather than
        into learning that most tokens are O (as bert_textcat's multi-label priors)."""
        counts = numpy.full(len(self.scheme.tags), smoothing, dtype="float64")
        for eg in examples:
            ids = self.scheme.tag_ids(eg.get_aligned_ner())
            counts += numpy.bincount(ids[ids >= 0], minlength=len(counts))
        return numpy.log(counts / counts.sum()).astype("float32")

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        validate_examples(examples, "BertEntityRecognizer.score")
        return self.scorer(examples)


def _check_decoder(decoder: str) -> None:
    if decoder not in _DECODE:
        raise ValueError(f"decoder must be one of {tuple(_DECODE)}, got {decoder!r}")


class TagScores(NamedTuple):
    """What bert_ner.predict gives for a doc, whatever the decoder."""

    logits: Floats2d  # [n, n_tags]: per token, or per word piece (decoder hf_first)
    offsets: Optional[numpy.ndarray] = None  # int64 [n_pieces, 2] of the pieces in doc.text; None: per token


# Each decoder: (component, docs, predict's scores) -> (entities of each doc as
# (start, end, label, confidence), the entities it had to widen or drop in each doc).
Decoded = Tuple[List[list], List[List[dict]]]


def _decode_constrained(pipe: "BertEntityRecognizer", docs: Sequence[Doc], scores: List[TagScores]) -> Decoded:
    """The most probable valid tag sequence of each doc, with confidences: one batched
    Viterbi + forward-backward, a numpy step per token position (not per token of every
    doc: it was 22% of nlp.pipe's time)."""
    log_probs = [log_softmax(pipe.model.ops.to_numpy(s.logits)) for s in scores]
    return decode_batch(log_probs, pipe.scheme, _no_piece(docs)), [[] for _ in docs]


def _decode_argmax(pipe: "BertEntityRecognizer", docs: Sequence[Doc], scores: List[TagScores]) -> Decoded:
    """HF's rule on spaCy's tokens as the words (HF's evaluation on pre-split words)."""
    scheme, names, found = pipe.scheme, hf_tag_names(pipe.scheme), []
    for doc, s, empty in zip(docs, scores, _no_piece(docs)):
        doc_lp = log_softmax(pipe.model.ops.to_numpy(s.logits))
        whitespace = numpy.array([t.is_space for t in doc], dtype=bool)
        # As HF's evaluation on pre-split words: a word without a piece is O (score 1).
        doc_lp[empty] = numpy.where(scheme.outside, 0.0, -numpy.inf)
        found.append(first_piece_entities(doc_lp, names, numpy.ones(len(doc), dtype=bool), whitespace))
    return found, [[] for _ in docs]


def _decode_hf_first(pipe: "BertEntityRecognizer", docs: Sequence[Doc], scores: List[TagScores]) -> Decoded:
    """HF's rule on BERT's words (transformers.pipeline, aggregation_strategy="first")."""
    names = hf_tag_names(pipe.scheme)
    unaligned_per_doc: List[List[dict]] = [[] for _ in docs]
    found = [_hf_first(doc, s, names, unaligned, pipe.model.ops)
             for doc, s, unaligned in zip(docs, scores, unaligned_per_doc)]
    return found, unaligned_per_doc


_DECODE: Dict[str, Callable[..., Decoded]] = {
    "constrained": _decode_constrained, "hf_first": _decode_hf_first, "argmax": _decode_argmax}
DECODERS = tuple(_DECODE)


def _gold_tag_ids(scheme: TagScheme, eg: Example) -> numpy.ndarray:
    """scheme.tag_ids(eg.get_aligned_ner()): the gold tag id of each predicted token, -1
    where unknown. Where both docs have the same tokens (the usual case in training) read
    from the reference's arrays: spaCy's alignment, rebuilt for every update because
    Language.update copies the examples, was 5% of a training step."""
    x, y = eg.predicted, eg.reference
    if len(x) != len(y) or not numpy.array_equal(x.to_array([ORTH, SPACY]), y.to_array([ORTH, SPACY])):
        return scheme.tag_ids(eg.get_aligned_ner())
    ids = numpy.full(len(y), -1, dtype="int64")
    if not y.has_annotation("ENT_IOB"):
        return ids
    outside = (y.to_array(ENT_IOB) == 2) | y.to_array(IS_SPACE).astype(bool)  # 2: O
    ids[outside] = scheme.index.get("O", -1)
    for ent in y.ents:
        ids[ent.start:ent.end] = scheme.tag_ids(span_biluo(ent.label_, ent.end - ent.start))
    return ids


def _no_piece(docs: Sequence[Doc]) -> List[numpy.ndarray]:
    """Per doc, the tokens of characters BERT drops (whitespace, control characters): no
    piece, no vector, so their tag is O. Asked once per distinct token text of the batch
    (a Token object per token, or doc.text, cost as much as the decoding)."""
    if not docs:
        return []
    orths = [doc.to_array(ORTH) for doc in docs]
    distinct, inverse = numpy.unique(numpy.concatenate(orths), return_inverse=True)
    strings = docs[0].vocab.strings
    no_piece = numpy.array([not _has_piece(strings[int(orth)]) for orth in distinct], dtype=bool)[inverse]
    return numpy.split(no_piece, numpy.cumsum([len(o) for o in orths])[:-1])


def _has_piece(text: str) -> bool:
    """Whether BERT's tokenizer makes at least one piece of a token's text: some character
    that is neither whitespace nor dropped by its normaliser (control and format
    characters, NUL, U+FFFD). Printable text without U+FFFD has one: the common case is
    decided in C, the rest character by character."""
    if text.isprintable() and not text.isspace() and "\ufffd" not in text:
        return True
    return bool(word_starts(text).any())


def _hf_first(doc: Doc, scores: TagScores, names: List[str], unaligned: List[dict], ops) -> list:
    """HF's rule on the pieces, then onto spaCy's tokens.

    The words are BERT's pre-tokenizer words (a piece starts one where the text has a word
    start), so the entities are those of transformers.pipeline on doc.text. An entity whose
    characters do not begin and end at token boundaries ("s" of "'s") is widened to the
    tokens it touches; one that then overlaps an earlier entity is dropped. Each such case
    goes to `unaligned` ({"start_char", "end_char", "label", "score", "action"}).
    """
    offsets = scores.offsets
    if not len(offsets):
        return []
    log_probs = log_softmax(ops.to_numpy(scores.logits))
    starts = word_starts(doc.text)[offsets[:, 0]]
    entities = []
    end = 0
    for first, last, label, score in first_piece_entities(log_probs, names, starts):
        start_char, end_char = int(offsets[first, 0]), int(offsets[last - 1, 1])
        span = doc.char_span(start_char, end_char)
        action = None
        if span is None:
            span = doc.char_span(start_char, end_char, alignment_mode="expand")
            action = "widened"
        if span.start < end:
            action = "dropped"
        if action is not None:
            unaligned.append({"start_char": start_char, "end_char": end_char, "label": label,
                              "score": score, "action": action})
        if action != "dropped":
            entities.append((span.start, span.end, label, score))
            end = span.end
    return entities


def _report_unaligned(name: str, cases: List[Tuple[Doc, dict]]) -> None:
    shown = "; ".join(f"{doc.text[u['start_char']:u['end_char']]!r} ({u['label']}, characters "
                      f"{u['start_char']}-{u['end_char']}) {u['action']}" for doc, u in cases[:5])
    logger.warning(
        "'%s' (decoder hf_first): %d entit%s of transformers' words did not fall on spaCy token "
        "boundaries: %s%s. Widened entities cover the tokens they touch; dropped ones overlapped an "
        "earlier entity. Each doc lists its own in doc.spans[spans_key].attrs['unaligned'].",
        name, len(cases), "y" if len(cases) == 1 else "ies", shown, "; ..." if len(cases) > 5 else "")
