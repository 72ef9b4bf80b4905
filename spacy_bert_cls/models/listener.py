"""The listener: what spaCy's textcat, ner, spancat (and our heads) take as their tok2vec.

In training, the upstream `bert` component hands each listener the batch's outputs
and a backprop callback (`receive`), as spaCy's Tok2Vec does. In prediction, the
component leaves each doc's output in a side table keyed by the doc (weakly), not on
the Doc: the last of its listeners to read it drops it, so nothing big outlives the
pipeline on the Doc (`set_doc_tensor` on the component keeps token vectors if wanted).
"""
from typing import Callable, Iterable, List, Optional

from spacy.attrs import ORTH
from spacy.tokens import Doc
from thinc.api import Model, Ragged, noop, reduce_mean
from thinc.types import Floats2d

from ..errors import E_NO_UPSTREAM_OUTPUT, ListenerError
from .output import BertGrad, BertOutput
from .output_table import take_output


# What a listener gives its component: a vector per token ("tokens"), or one per doc:
# BERT's pooler over [CLS] ("pooler"), the raw [CLS] state ("cls") or the mean of the
# doc's pieces ("mean"). A doc of several windows averages its windows' vectors.
LISTENER_OUTPUTS = ("tokens", "pooler", "cls", "mean")


class BertListener(Model):
    """Supplies token vectors from the upstream `bert` component to a downstream model."""

    name = "bert-listener"

    def __init__(self, upstream_name: str, width: int, pooling: Model, grad_factor: float,
                 output: str = "tokens") -> None:
        if output not in LISTENER_OUTPUTS:
            raise ValueError(f"listener output must be one of {LISTENER_OUTPUTS}, got {output!r}")
        Model.__init__(
            self,
            name=self.name,
            forward=listener_forward,
            init=listener_init,
            dims={"nO": width},
            layers=[pooling],
            attrs={"grad_factor": float(grad_factor), "output": output},
        )
        self.upstream_name = upstream_name
        self._batch_id: Optional[int] = None
        self._outputs: Optional[List[BertOutput]] = None
        self._backprop: Optional[Callable] = None
        self._initializing = False

    @classmethod
    def get_batch_id(cls, docs: Iterable[Doc]) -> int:
        """A content hash of a batch, to check that a listener gets the batch it was sent:
        the sum of its tokens' ORTH ids, modulo 2**64 (read as an array: a Token object per
        token was 3% of a training step with a tiny encoder)."""
        return int(sum(int(doc.to_array(ORTH).sum(dtype="uint64")) for doc in docs) % 2 ** 64)

    def take_outputs(self, docs: List[Doc]) -> List[Optional[BertOutput]]:
        """The upstream outputs of `docs` as they are, read as the listener reads them in
        prediction (each listener once). For a component that needs more than the pooled
        vectors (bert_ner's hf_first decoder works on every piece)."""
        return [_output_for(self, doc) for doc in docs]

    def receive(self, batch_id: int, outputs: List[BertOutput], backprop: Callable) -> None:
        """Take the upstream's training outputs for a batch and its backprop callback."""
        self._batch_id = batch_id
        self._outputs = outputs
        self._backprop = backprop
        self._initializing = False

    def clear(self) -> None:
        """Forget the last training batch (its outputs hold the encoder's activations)."""
        self._batch_id = None
        self._outputs = None
        self._backprop = None

    def __getstate__(self):
        # The last training batch and its backprop closure neither pickle nor matter.
        # Thinc's Model keeps most of its state in __slots__: pickle takes those as the
        # second half of a (dict, slots) state.
        state = dict(self.__dict__)
        state.update(_batch_id=None, _outputs=None, _backprop=None, _initializing=False)
        slots = {
            name: getattr(self, name)
            for cls in type(self).__mro__
            for name in getattr(cls, "__slots__", ())
            if name not in ("__dict__", "__weakref__") and hasattr(self, name)
        }
        return (state, slots)


def build_bert_listener_v1(
    width: int,
    upstream: str = "*",
    pooling: Optional[Model[Ragged, Floats2d]] = None,
    grad_factor: float = 1.0,
) -> Model[List[Doc], List[Floats2d]]:
    """Token vectors from an upstream `bert` component (spacy-bert-cls.BertListener.v1).

    width (int): the encoder's hidden_size.
    upstream (str): name of the `bert` component, or "*" for the only one.
    pooling (Model[Ragged, Floats2d]): how a token's pieces become its vector;
        reduce_mean by default (reduce_first, reduce_max, reduce_last also work).
    grad_factor (float): scales the gradient this listener sends to the encoder;
        0 keeps the encoder as it is for this component.
    """
    return BertListener(upstream, width, pooling if pooling is not None else reduce_mean(), grad_factor)


def build_bert_doc_listener_v1(
    width: int, upstream: str = "*", reduce: str = "pooler", grad_factor: float = 1.0
) -> Model[List[Doc], Floats2d]:
    """One vector per doc from an upstream `bert` component (spacy-bert-cls.BertDocListener.v1).

    reduce (str): "pooler" (BERT's pooled [CLS]: dense + tanh, what
        BertForSequenceClassification classifies), "cls" (the raw [CLS] state) or
        "mean" (the mean of the doc's pieces). A doc of several windows averages them.
    """
    if reduce == "tokens":
        raise ValueError("BertDocListener gives one vector per doc: reduce must be pooler, cls or mean")
    return BertListener(upstream, width, noop(), grad_factor, output=reduce)


def listener_init(model: BertListener, X=None, Y=None) -> None:
    # Components initialise their models on sample docs that no `bert` has run on
    # (thinc's chain then predicts on them, maybe several times): until the listener
    # sees real output, a missing one gives zeros of the right shape, not an error.
    model._initializing = True


def listener_forward(model: BertListener, docs: List[Doc], is_train: bool):
    upstream_backprop = None
    if is_train and model._batch_id is not None:
        batch_id = model.get_batch_id(docs)
        if batch_id != model._batch_id:
            raise ListenerError(
                f"The bert listener got a batch (id {batch_id}) other than the one its "
                f"upstream component sent (id {model._batch_id})."
            )
        outputs = model._outputs
        upstream_backprop = model._backprop
    else:
        outputs = [_output_for(model, doc) for doc in docs]
    return pool_outputs(model, docs, outputs, upstream_backprop, is_train)


def pool_outputs(model: BertListener, docs: List[Doc], outputs: List[Optional[BertOutput]],
                  upstream_backprop: Optional[Callable], is_train: bool):
    """The listener's vectors from the encoder's outputs, and their backprop into
    `upstream_backprop` (None: nothing to send, as in prediction or a frozen encoder)."""
    if model.attrs["output"] == "tokens":
        tokvecs, backprop_pool = pool_tokens(model, docs, outputs, is_train)
    else:
        tokvecs, backprop_pool = pool_docs(model, outputs, model.attrs["output"])

    def backprop(d_tokvecs: List[Floats2d]) -> List:
        if upstream_backprop is None:
            return []
        grad_factor = model.attrs["grad_factor"]
        if grad_factor == 0.0:
            d_outputs = [BertGrad() for _ in docs]
        else:
            d_outputs = backprop_pool(d_tokvecs)
            if grad_factor != 1.0:
                for d in d_outputs:
                    for name in ("pieces", "cls", "pooled"):
                        if getattr(d, name) is not None:
                            setattr(d, name, getattr(d, name) * grad_factor)
        model.clear()
        return upstream_backprop(d_outputs)

    return tokvecs, backprop


def _output_for(model: BertListener, doc: Doc) -> Optional[BertOutput]:
    output = take_output(doc, model.upstream_name, model)
    if output is not None:
        model._initializing = False
    elif not model._initializing:
        raise ListenerError(E_NO_UPSTREAM_OUTPUT)
    return output


def pool_tokens(model: BertListener, docs: List[Doc], outputs: List[Optional[BertOutput]], is_train: bool):
    """One vector per token: the pooling layer over each token's pieces.

    Tokens without pieces (whitespace) get zeros. A None output (initialisation
    only) gives zeros for a doc of that many tokens.
    """
    ops = model.ops
    xp = ops.xp
    width = model.get_dim("nO")
    pooling = model.layers[0]
    present = [o for o in outputs if o is not None]
    # The alignment is computed on the host; the vectors may live on a GPU.
    aligned = [xp.asarray(o.token_pieces) for o in present]
    gathered = [o.pieces[index] for o, index in zip(present, aligned)]
    lengths = xp.concatenate([xp.asarray(o.token_lengths) for o in present]) if present else ops.alloc1i(0)
    has_pieces = lengths > 0
    n_tokens = int(lengths.shape[0])
    if int(has_pieces.sum()):
        data = xp.concatenate(gathered) if len(gathered) > 1 else gathered[0]
        pooled, backprop_pooling = pooling(Ragged(data, ops.asarray1i(lengths[has_pieces])), is_train)
    else:
        pooled, backprop_pooling = ops.alloc2f(0, width), None
    all_tokens = ops.alloc2f(n_tokens, width)
    all_tokens[has_pieces] = pooled
    tokvecs = []
    start = 0
    for doc, output in zip(docs, outputs):
        if output is None:
            tokvecs.append(ops.alloc2f(len(doc), width))
            continue
        tokvecs.append(all_tokens[start:start + output.n_tokens])
        start += output.n_tokens

    def backprop(d_tokvecs: List[Floats2d]) -> List[BertGrad]:
        d_all = xp.concatenate([d for d, o in zip(d_tokvecs, outputs) if o is not None])
        d_data = backprop_pooling(d_all[has_pieces]).dataXd if backprop_pooling else None
        grads = []
        offset = 0
        for output, index in zip(present, aligned):
            d_pieces = ops.alloc2f(*output.pieces.shape)
            n = index.shape[0]
            if n:
                ops.scatter_add(d_pieces, index, d_data[offset:offset + n])
            offset += n
            grads.append(BertGrad(pieces=d_pieces))
        return grads

    return tokvecs, backprop


def pool_docs(model: BertListener, outputs: List[Optional[BertOutput]], reduce: str):
    """One vector per doc (see LISTENER_OUTPUTS); zeros for a None output (initialisation)."""
    ops = model.ops
    width = model.get_dim("nO")
    field = {"pooler": "pooled", "cls": "cls", "mean": "pieces"}[reduce]
    rows = [getattr(o, field) if o is not None else None for o in outputs]
    Y = ops.alloc2f(len(outputs), width)
    for i, r in enumerate(rows):
        if r is not None and r.shape[0]:
            Y[i] = r.mean(axis=0)

    def backprop(dY: Floats2d) -> List[BertGrad]:
        grads = []
        for i, r in enumerate(rows):
            d = ops.alloc2f(*r.shape)
            if r.shape[0]:
                d += dY[i] / r.shape[0]
            grads.append(BertGrad(**{field: d}))
        return grads

    return Y, backprop
