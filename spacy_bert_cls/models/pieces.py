"""Thinc layer: docs -> word pieces of their text, aligned to their tokens."""
from typing import List

import numpy
import srsly
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc
from thinc.api import Model
from thinc.model import deserialize_attr, serialize_attr

from ..errors import E_NO_TOKENIZER
from ..tokenization import PieceTokenizer, align_pieces
from .output import DocPieces

TOKENIZER_ATTR = "piece_tokenizer"


class NoTokenizer:
    """Placeholder until a loader sets the tokenizer.

    Thinc restores a saved attr by the type of the attr the fresh model holds, so
    the placeholder must be a type of ours, not None.
    """

    def __eq__(self, other) -> bool:
        return isinstance(other, NoTokenizer)


def build_piece_encoder() -> Model[List[Doc], List[DocPieces]]:
    """The tokenizer arrives at initialize time (see loaders.py) and is saved with the model."""
    return Model("bert_pieces", piece_encoder_forward, attrs={TOKENIZER_ATTR: NoTokenizer()})


def get_piece_tokenizer(model: Model) -> PieceTokenizer:
    tokenizer = model.attrs[TOKENIZER_ATTR]
    if not isinstance(tokenizer, PieceTokenizer):
        raise ValueError(E_NO_TOKENIZER.format(name="bert"))
    return tokenizer


def set_piece_tokenizer(model: Model, tokenizer: PieceTokenizer) -> None:
    model.attrs[TOKENIZER_ATTR] = tokenizer


def piece_encoder_forward(model: Model, docs: List[Doc], is_train: bool):
    tokenizer = get_piece_tokenizer(model)
    encoded = tokenizer.encode_batch([doc.text for doc in docs])
    outputs = []
    for doc, (ids, offsets) in zip(docs, encoded):
        spans = doc.to_array([IDX, LENGTH]).astype("int64")
        starts = spans[:, 0] if len(doc) else numpy.zeros((0,), dtype="int64")
        ends = starts + spans[:, 1] if len(doc) else starts
        token_pieces, token_lengths = align_pieces(starts, ends, offsets)
        outputs.append(DocPieces(ids, token_pieces, token_lengths, offsets))
    return outputs, lambda d_outputs: []


@serialize_attr.register(PieceTokenizer)
@serialize_attr.register(NoTokenizer)
def _serialize_tokenizer(_, value, name: str, model: Model) -> bytes:
    data = value.to_dict() if isinstance(value, PieceTokenizer) else {}
    return srsly.msgpack_dumps(data)


@deserialize_attr.register(PieceTokenizer)
@deserialize_attr.register(NoTokenizer)
def _deserialize_tokenizer(_, value: bytes, name: str, model: Model):
    data = srsly.msgpack_loads(value)
    return PieceTokenizer.from_dict(data) if data else NoTokenizer()
