"""The `bert` component's model: docs -> word pieces -> windows -> encoder -> BertOutput per doc."""
from typing import Any, Dict, List, Optional

from spacy.tokens import Doc
from thinc.api import Model

from ..pytorch.config import BertConfig
from .encoder import build_windowed_encoder
from .inline_listener import replace_listener, replace_listener_cfg
from .output import BertOutput
from .pieces import build_piece_encoder, get_piece_tokenizer


def build_bert_transformer_v1(
    vocab_size: int = 30522,
    hidden_size: int = 384,
    num_hidden_layers: int = 6,
    num_attention_heads: int = 12,
    intermediate_size: int = 1536,
    hidden_act: str = "gelu",
    hidden_dropout_prob: float = 0.1,
    attention_probs_dropout_prob: float = 0.1,
    max_position_embeddings: int = 512,
    type_vocab_size: int = 2,
    layer_norm_eps: float = 1e-12,
    pad_token_id: int = 0,
    window_size: int = 256,
    stride: int = 192,
    overlap: str = "center",
    max_batch_pieces: int = 8192,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[Dict[str, Any]] = None,
) -> Model[List[Doc], List[BertOutput]]:
    """A BERT encoder over spaCy docs (registered as spacy-bert-cls.BertTransformer.v1).

    The sizes are those of HF's config.json; a checkpoint loaded at initialize
    time must have the same (the loader says which override to pass if not).
    Weights are not part of this config: they arrive from the loader, or start
    random, and are saved with the pipeline.

    window_size (int): pieces per window, [CLS] and [SEP] included.
    stride (int): pieces between window starts; window_size - 2 - stride overlap.
    overlap (str): "center" (each overlapped piece from the window where it has most
        context) or "mean" (the windows' vectors averaged).
    max_batch_pieces (int): most padded pieces the encoder takes in one call.
    mixed_precision (bool): run the encoder under torch autocast: fp16 with a gradient
        scaler on CUDA, bf16 on the CPU.
    grad_scaler_config (dict): settings of the fp16 gradient scaler, as in
        spacy-transformers (init_scale, growth_factor, backoff_factor, ...).
    RETURNS (Model[List[Doc], List[BertOutput]]): the model; output dim nO = hidden_size.
    """
    # The sizes are BertConfig's fields, under the same names: the arguments (locals(),
    # before any other local variable) filtered to those fields.
    config = BertConfig.from_dict(locals())
    pieces = build_piece_encoder()
    encoder = build_windowed_encoder(
        config,
        window_size=window_size,
        stride=stride,
        overlap=overlap,
        max_batch_pieces=max_batch_pieces,
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config or {}),
    )
    return _transformer_model(pieces, encoder)


def _transformer_model(pieces: Model, encoder: Model) -> Model[List[Doc], List[BertOutput]]:
    """The `bert` component's model: the piece encoder, then the windowed encoder."""
    return Model(
        "bert_transformer",
        transformer_forward,
        layers=[pieces, encoder],
        refs={"pieces": pieces, "encoder": encoder},
        dims={"nO": encoder.get_dim("nO")},
        # nlp.replace_listeners: a listener becomes an InlineBertListener with a copy of
        # this model (functions in attrs are not serialized; the config sets them again)
        attrs={"replace_listener": replace_listener, "replace_listener_cfg": replace_listener_cfg},
    )


def transformer_forward(model: Model, docs: List[Doc], is_train: bool):
    pieces_layer = model.get_ref("pieces")
    pieces, _ = pieces_layer(docs, is_train=False)  # not differentiable
    tokenizer = get_piece_tokenizer(pieces_layer)
    outputs, backprop_encoder = model.get_ref("encoder")((pieces, tokenizer), is_train)
    for output, doc_pieces in zip(outputs, pieces):
        output.piece_offsets = doc_pieces.offsets

    def backprop(d_outputs):
        backprop_encoder(d_outputs)
        return []

    return outputs, backprop
