"""Word pieces of a doc's text (the `tokenizers` library) and their alignment to spaCy tokens."""
from .alignment import align_pieces
from .wordpiece import PieceTokenizer, load_piece_tokenizer

__all__ = ["PieceTokenizer", "align_pieces", "load_piece_tokenizer"]
