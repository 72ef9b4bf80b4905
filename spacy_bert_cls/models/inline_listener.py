"""The inline listener: a component's own copy of the encoder, in place of a listener.

What `nlp.replace_listeners` (and a sourced component's `replace_listeners` in a config,
as `spacy assemble` reads it) puts in a component's model, with the two hooks the `bert`
model carries for it (replace_listener, replace_listener_cfg).
"""
import logging
from typing import List, Optional

from spacy.tokens import Doc
from thinc.api import Model, Ragged, noop, reduce_mean
from thinc.shims import Shim
from thinc.types import Floats2d

from ..errors import E_INLINE_NOT_TRAINED, ListenerError
from .encoder import get_bert_shim
from .listener import BertListener, pool_outputs
from .output import BertOutput
from .pieces import get_piece_tokenizer

logger = logging.getLogger("spacy_bert_cls")


class InlineBertListener(BertListener):
    """A listener that owns a copy of the encoder and runs it itself.

    What `nlp.replace_listeners` (and a sourced component's `replace_listeners` in a
    config, as `spacy assemble` reads it) puts in a component's model in place of its
    BertListener: the component then needs no `bert` component, so heads trained in
    different pipelines can be assembled into one, each keeping the encoder it was
    trained with. It gives the vectors the listener gave, with the same pooling, output
    and grad_factor. Training it updates its own encoder (clipped by its global norm, as
    `bert` does); the pieces of one text are then encoded once per inline listener.
    """

    name = "bert-inline-listener"

    def __init__(self, encoder: Model, width: int, pooling: Model, grad_factor: float,
                 output: str = "tokens") -> None:
        # No upstream name: no `bert` component adds it to its listeners.
        BertListener.__init__(self, "", width, pooling, grad_factor, output)
        self._func = inline_forward
        self.init = inline_init
        self._layers.append(encoder)
        self._refs["encoder"] = encoder
        get_bert_shim(encoder).clip_global = True

    def take_outputs(self, docs: List[Doc]) -> List[Optional[BertOutput]]:
        """Its own encoder's outputs of `docs` (BertListener.take_outputs)."""
        return _inline_encoder(self).predict(docs) if docs else []


def inline_init(model: InlineBertListener, X=None, Y=None) -> None:
    # The encoder is built from its config and takes its weights from the sourced
    # pipeline (from_disk); initializing it again would start it over.
    model._initializing = False


def _inline_encoder(model: InlineBertListener) -> Model:
    """The listener's own encoder, which must have come from a trained pipeline."""
    encoder = model.get_ref("encoder")
    try:
        get_piece_tokenizer(encoder.get_ref("pieces"))
    except ValueError as err:
        raise ListenerError(E_INLINE_NOT_TRAINED) from err
    return encoder


def inline_forward(model: InlineBertListener, docs: List[Doc], is_train: bool):
    encoder = _inline_encoder(model)
    if not docs:
        outputs, backprop_encoder = [], None
    elif is_train:
        outputs, backprop_encoder = encoder(docs, is_train=True)
    else:
        outputs, backprop_encoder = encoder.predict(docs), None
    return pool_outputs(model, docs, outputs, backprop_encoder, is_train)


def build_bert_inline_listener_v1(
    encoder: Model[List[Doc], List[BertOutput]],
    width: int,
    pooling: Optional[Model[Ragged, Floats2d]] = None,
    output: str = "tokens",
    grad_factor: float = 1.0,
    inference_dtype: str = "float32",
) -> Model[List[Doc], List[Floats2d]]:
    """A listener with its own encoder (spacy-bert-cls.BertInlineListener.v1): what
    replace_listeners writes in a component's config in place of a BertListener.v1 or
    BertDocListener.v1.

    encoder (Model): the `bert` component's model (spacy-bert-cls.BertTransformer.v1).
    width (int): the encoder's hidden_size.
    pooling (Model[Ragged, Floats2d]): for output "tokens", how a token's pieces become
        its vector (reduce_mean by default).
    output (str): "tokens", or one vector per doc: "pooler", "cls" or "mean".
    grad_factor (float): scales the gradient sent into the encoder in training.
    inference_dtype (str): "float32", "int8" or "bfloat16", as the `bert` setting.
    """
    if output == "tokens":
        pooling = pooling if pooling is not None else reduce_mean()
    else:
        pooling = noop()
    get_bert_shim(encoder).windowed.inference_dtype = inference_dtype
    return InlineBertListener(encoder, width, pooling, grad_factor, output=output)


def replace_listener(encoder: Model, listener: BertListener, component) -> InlineBertListener:
    """`nlp.replace_listeners` hook (the `bert` model's attrs["replace_listener"]):
    `encoder` is a copy of the `bert` component's model. It predicts in float32, as the
    config replace_listener_cfg writes says (set inference_dtype there for int8 or bf16)."""
    _restore_refs(component.model, encoder)
    windowed = get_bert_shim(encoder).windowed
    if windowed.inference_dtype != "float32":
        # The config written for the copy cannot say it: replace_listener_cfg sees the
        # bert model's config, and inference_dtype is the bert component's setting.
        logger.warning("replace_listeners: a component gets its own copy of the '%s' encoder, which predicted in "
                       "%s; the copy predicts in float32. To keep %s, quantize the assembled pipeline: "
                       "spacy-bert-cls quantize PIPELINE OUTPUT --component NAME (the component's), or set "
                       "inference_dtype in its BertInlineListener block.", component.name,
                       windowed.inference_dtype, windowed.inference_dtype)
    windowed.inference_dtype = "float32"
    return InlineBertListener(encoder, listener.get_dim("nO"), listener.layers[0],
                              listener.attrs["grad_factor"], output=listener.attrs["output"])


def _restore_refs(original: Model, copy: Model) -> None:
    """thinc's Model.copy leaves out the references (model.get_ref): set those of `copy`
    to its nodes in the places of the original's. And its shims keep the original's ids."""
    originals = list(original.walk())
    copies = list(copy.walk())
    if len(originals) != len(copies):
        raise ValueError("replace_listeners: the copy of the bert model does not match the original")
    position = {node.id: i for i, node in enumerate(originals)}
    for node, new in zip(originals, copies):
        for name in node.ref_names:
            if node.has_ref(name) and not new.has_ref(name):
                new.set_ref(name, copies[position[node.get_ref(name).id]])
        # A shim's copy is a deepcopy, id included: a new id, so that an optimizer
        # keeps the two encoders' states apart (its keys are (shim id, parameter)).
        for shim in new.shims:
            Shim.global_id += 1
            shim.id = Shim.global_id


def replace_listener_cfg(encoder_cfg: dict, listener_cfg: dict) -> dict:
    """`nlp.replace_listeners` hook (attrs["replace_listener_cfg"]): the config of the
    InlineBertListener that takes the place of the listener configured by `listener_cfg`."""
    architecture = listener_cfg.get("@architectures", "")
    if architecture.startswith("spacy-bert-cls.BertDocListener"):
        output, pooling = listener_cfg.get("reduce", "pooler"), None
    elif architecture.startswith("spacy-bert-cls.BertListener"):
        output, pooling = "tokens", listener_cfg.get("pooling")
    else:
        raise ValueError(f"replace_listeners: a 'bert' component can only replace its own listeners "
                         f"(spacy-bert-cls.BertListener.v1, BertDocListener.v1), not {architecture!r}")
    cfg = {
        "@architectures": "spacy-bert-cls.BertInlineListener.v1",
        "encoder": encoder_cfg,
        "width": listener_cfg["width"],
        "output": output,
        "grad_factor": listener_cfg.get("grad_factor", 1.0),
    }
    if pooling is not None:
        cfg["pooling"] = pooling
    return cfg
