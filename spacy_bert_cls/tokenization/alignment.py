"""Which word pieces serve which spaCy token: overlap of character spans."""
from typing import Tuple

import numpy


def align_pieces(
    token_starts: numpy.ndarray,
    token_ends: numpy.ndarray,
    piece_offsets: numpy.ndarray,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For each token, the pieces whose character span overlaps the token's.

    A piece that covers parts of two tokens serves both; a token that no piece
    overlaps (whitespace, or characters the tokenizer drops) gets none.

    token_starts, token_ends (ndarray[n_tokens], int): character spans of the tokens.
    piece_offsets (ndarray[n_pieces, 2], int): character spans of the pieces, in order.
    RETURNS (Tuple[ndarray, ndarray]): piece indices of all tokens concatenated
        (int64), and the number of pieces of each token (int64, [n_tokens]).
    """
    token_starts = numpy.asarray(token_starts, dtype="int64")
    token_ends = numpy.asarray(token_ends, dtype="int64")
    n_tokens = token_starts.shape[0]
    if n_tokens == 0 or piece_offsets.shape[0] == 0:
        return numpy.zeros((0,), dtype="int64"), numpy.zeros((n_tokens,), dtype="int64")
    starts = piece_offsets[:, 0]
    # A zero-width piece still sits at a character: give it that character's span.
    ends = numpy.maximum(piece_offsets[:, 1], starts + 1)
    if numpy.all(starts[1:] >= starts[:-1]) and numpy.all(ends[1:] >= ends[:-1]):
        # Monotone spans (the normal case): the overlapping pieces of a token are one
        # contiguous run, from the first piece ending after the token starts to the
        # last piece starting before it ends.
        first = numpy.searchsorted(ends, token_starts, side="right")
        stop = numpy.searchsorted(starts, token_ends, side="left")
        lengths = numpy.maximum(stop - first, 0)
        total = int(lengths.sum())
        run_starts = numpy.repeat(first - (numpy.cumsum(lengths) - lengths), lengths)
        return run_starts + numpy.arange(total, dtype="int64"), lengths.astype("int64")
    # Out-of-order spans: test every pair (rare; never seen with BERT tokenizers).
    overlap = (starts[None, :] < token_ends[:, None]) & (ends[None, :] > token_starts[:, None])
    rows, cols = numpy.nonzero(overlap)
    lengths = numpy.bincount(rows, minlength=n_tokens).astype("int64")
    return cols.astype("int64"), lengths
