"""What the `bert` component gives its listeners for each doc."""
from dataclasses import dataclass
from typing import Optional

from thinc.types import Floats2d, Ints1d, Ints2d


@dataclass
class DocPieces:
    """The word pieces of one doc and their alignment to its tokens.

    ids (Ints1d[n_pieces]): piece ids of the doc's text, no special tokens.
    token_pieces (Ints1d): piece rows of every token, concatenated in token order;
        a piece covering parts of two tokens appears for both.
    token_lengths (Ints1d[n_tokens]): pieces per token (0 for whitespace tokens).
    offsets (Ints2d[n_pieces, 2]): character span of each piece in the doc's text.
    """

    ids: Ints1d
    token_pieces: Ints1d
    token_lengths: Ints1d
    offsets: Optional[Ints2d] = None


@dataclass
class BertOutput:
    """The encoder's output for one doc.

    pieces (Floats2d[n_pieces, hidden]): last-layer state of every piece, overlapping
        windows combined.
    cls (Floats2d[n_windows, hidden]): last-layer [CLS] state of each window.
    pooled (Floats2d[n_windows, hidden]): BERT's pooler (dense + tanh) over `cls`.
    token_pieces, token_lengths: the doc's alignment (see DocPieces).
    piece_offsets (Ints2d[n_pieces, 2]): character span of each piece (DocPieces.offsets),
        for what works on the pieces' own words (bert_ner's hf_first decoder).
    """

    pieces: Floats2d
    cls: Floats2d
    pooled: Floats2d
    token_pieces: Ints1d
    token_lengths: Ints1d
    piece_offsets: Optional[Ints2d] = None

    @property
    def n_tokens(self) -> int:
        return int(self.token_lengths.shape[0])


@dataclass
class BertGrad:
    """Gradients for one doc's BertOutput; None for a part nobody used."""

    pieces: Optional[Floats2d] = None
    cls: Optional[Floats2d] = None
    pooled: Optional[Floats2d] = None

    def __iadd__(self, other: "BertGrad") -> "BertGrad":
        for name in ("pieces", "cls", "pooled"):
            theirs = getattr(other, name)
            if theirs is None:
                continue
            mine = getattr(self, name)
            setattr(self, name, theirs.copy() if mine is None else mine + theirs)
        return self
