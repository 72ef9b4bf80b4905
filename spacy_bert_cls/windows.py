"""Cut each doc's word pieces into overlapping windows, and put the windows back together.

Every window gets its own [CLS] and [SEP]. Windows overlap by
`window_size - 2 - stride` pieces; a piece seen by several windows is combined:
`center` takes it from the window where it has the most context on both sides
(BERT's max-context rule for long documents), `mean` averages the windows' vectors.
Nothing is truncated: however long the doc, every piece is in some window.

Windows of a batch are sorted by length and grouped so that padding stays small.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy

OVERLAP_MODES = ("center", "mean")


def window_spans(n_pieces: int, content_size: int, stride: int) -> List[Tuple[int, int]]:
    """The [start, end) piece spans of the windows of one doc (at least one window)."""
    spans = [(0, min(content_size, n_pieces))]
    while spans[-1][1] < n_pieces:
        start = spans[-1][0] + stride
        spans.append((start, min(start + content_size, n_pieces)))
    return spans


@dataclass
class Bucket:
    """Windows of similar length, padded to one tensor shape."""

    input_ids: numpy.ndarray  # int64 [n_windows, seq]
    attention_mask: numpy.ndarray  # bool [n_windows, seq], None-like when nothing is padded
    padded: bool


@dataclass
class WindowPlan:
    """How a batch of docs becomes windows, and how window outputs become doc outputs.

    The encoder's outputs of all buckets, flattened to [rows, hidden] in bucket order,
    are combined into doc pieces by `piece_rows` (gather), then, for `mean`,
    `index_add` into `piece_targets` with `piece_weights`.
    """

    buckets: List[Bucket]
    piece_rows: numpy.ndarray  # int64 [n_sources]: flat output row of each source
    piece_targets: numpy.ndarray  # int64 [n_sources]: doc-piece row it contributes to
    piece_weights: numpy.ndarray  # float32 [n_sources]
    n_pieces: int  # total pieces of all docs (rows of the combined output)
    one_source_each: bool  # piece_targets is 0..n_pieces-1 in order: gather only
    cls_rows: numpy.ndarray  # int64 [n_windows]: flat row of each window's [CLS], doc order
    doc_pieces: numpy.ndarray  # int64 [n_docs]: pieces of each doc
    doc_windows: numpy.ndarray  # int64 [n_docs]: windows of each doc


def plan_windows(
    doc_ids: Sequence[numpy.ndarray],
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    window_size: int,
    stride: int,
    overlap: str = "center",
    max_batch_pieces: int,
) -> WindowPlan:
    """Plan the windows of a batch of docs.

    doc_ids (Sequence[ndarray]): the piece ids of each doc, without special tokens.
    window_size (int): pieces in a window, [CLS] and [SEP] included.
    stride (int): pieces between the starts of consecutive windows of a doc.
    overlap (str): how a piece in several windows is combined: "center" or "mean".
    max_batch_pieces (int): most padded pieces in one encoder call, the `bert` model's
        setting (no default here: WindowedBert runs the buckets in calls of at most as
        many pieces, and the two must be one number).
    """
    _check_window_args(window_size, stride, overlap)
    win_doc, win_start, win_end, doc_windows = _all_windows(doc_ids, window_size - 2, stride)
    n_content = win_end - win_start
    lengths = n_content + 2  # with [CLS] and [SEP]
    buckets, flat_offset = _bucket(doc_ids, win_doc, win_start, win_end, lengths,
                                   cls_id, sep_id, pad_id, max_batch_pieces)
    doc_pieces = numpy.asarray([len(ids) for ids in doc_ids], dtype="int64")
    n_pieces = int(doc_pieces.sum())
    src_win, within, rows, targets = _piece_sources(win_doc, win_start, n_content, flat_offset, doc_pieces)
    if overlap == "center":
        combined = _combine_by_center(rows, targets, src_win, within, n_content)
    else:
        combined = _combine_by_mean(rows, targets, n_pieces)
    piece_rows, piece_targets, piece_weights, one_source_each = combined
    return WindowPlan(
        buckets=buckets,
        piece_rows=piece_rows,
        piece_targets=piece_targets,
        piece_weights=piece_weights,
        n_pieces=n_pieces,
        one_source_each=one_source_each,
        cls_rows=flat_offset,  # [CLS] sits at position 0 of every window
        doc_pieces=doc_pieces,
        doc_windows=doc_windows,
    )


def _check_window_args(window_size: int, stride: int, overlap: str) -> None:
    if overlap not in OVERLAP_MODES:
        raise ValueError(f"overlap must be one of {OVERLAP_MODES}, got {overlap!r}")
    content = window_size - 2
    if content < 1 or not 0 < stride <= content:
        raise ValueError(
            f"Need window_size >= 3 and 0 < stride <= window_size - 2, got "
            f"window_size={window_size}, stride={stride}"
        )


def _all_windows(doc_ids: Sequence[numpy.ndarray], content: int, stride: int):
    """Every window of the batch as (doc, start, end) in its doc's piece coordinates.

    RETURNS: int64 arrays win_doc, win_start, win_end [n_windows], and the number
        of windows of each doc [n_docs].
    """
    win_doc, win_start, win_end = [], [], []
    doc_windows = numpy.zeros(len(doc_ids), dtype="int64")
    for d, ids in enumerate(doc_ids):
        spans = window_spans(len(ids), content, stride)
        doc_windows[d] = len(spans)
        for start, end in spans:
            win_doc.append(d)
            win_start.append(start)
            win_end.append(end)
    return (numpy.asarray(win_doc, dtype="int64"), numpy.asarray(win_start, dtype="int64"),
            numpy.asarray(win_end, dtype="int64"), doc_windows)


def _piece_sources(win_doc, win_start, n_content, flat_offset, doc_pieces):
    """Sources: every (window, position) of every real piece, in window order.

    RETURNS: for each source its window, its position among the window's pieces,
        its flat output row, and the doc-piece row it contributes to.
    """
    doc_first_piece = numpy.cumsum(doc_pieces) - doc_pieces
    src_win = numpy.repeat(numpy.arange(len(win_doc)), n_content)
    within = numpy.arange(int(n_content.sum())) - numpy.repeat(numpy.cumsum(n_content) - n_content, n_content)
    piece_in_doc = win_start[src_win] + within
    rows = flat_offset[src_win] + 1 + within  # +1: after [CLS]
    targets = doc_first_piece[win_doc[src_win]] + piece_in_doc
    return src_win, within, rows, targets


def _combine_by_center(rows, targets, src_win, within, n_content):
    """overlap="center": each piece from the window where it has the most context.

    RETURNS: piece_rows, piece_targets, piece_weights, one_source_each of the plan.
    """
    # Context of the piece in this window: pieces on its poorer side.
    context = numpy.minimum(within, n_content[src_win] - 1 - within)
    # Per target keep the source with most context (the earliest window on ties).
    order = numpy.lexsort((src_win, -context, targets))
    keep = numpy.ones(len(order), dtype=bool)
    sorted_targets = targets[order]
    keep[1:] = sorted_targets[1:] != sorted_targets[:-1]
    chosen = order[keep]
    return rows[chosen], targets[chosen], numpy.ones(len(chosen), dtype="float32"), True


def _combine_by_mean(rows, targets, n_pieces: int):
    """overlap="mean": every source of a piece, weighted 1 / its number of sources.

    RETURNS: piece_rows, piece_targets, piece_weights, one_source_each of the plan.
    """
    counts = numpy.bincount(targets, minlength=n_pieces)
    return rows, targets, (1.0 / counts[targets]).astype("float32"), bool((counts == 1).all())


def _bucket(doc_ids, win_doc, win_start, win_end, lengths, cls_id, sep_id, pad_id, max_batch_pieces):
    """Group windows by length into padded buckets.

    RETURNS: the buckets, and for each window (in plan order) the flat row of its
        position 0 in the concatenation of all buckets' [n, seq] outputs.
    """
    order = numpy.argsort(-lengths, kind="stable")
    groups: List[List[int]] = []
    current: List[int] = []
    for w in order:
        if current:
            seq = int(lengths[current[0]])
            too_big = (len(current) + 1) * seq > max_batch_pieces
            # Start a new bucket when this window would be mostly padding, once the
            # bucket is big enough for efficient matrix products.
            too_short = lengths[w] < 0.75 * seq and len(current) * seq >= 256
            if too_big or too_short:
                groups.append(current)
                current = []
        current.append(int(w))
    if current:
        groups.append(current)
    buckets = []
    flat_offset = numpy.zeros(len(win_doc), dtype="int64")
    offset = 0
    for group in groups:
        seq = int(lengths[group[0]])
        ids = numpy.full((len(group), seq), pad_id, dtype="int64")
        mask = numpy.zeros((len(group), seq), dtype=bool)
        for row, w in enumerate(group):
            n = int(lengths[w])
            ids[row, 0] = cls_id
            ids[row, 1:n - 1] = doc_ids[win_doc[w]][win_start[w]:win_end[w]]
            ids[row, n - 1] = sep_id
            mask[row, :n] = True
            flat_offset[w] = offset + row * seq
        buckets.append(Bucket(ids, mask, padded=not bool(mask.all())))
        offset += len(group) * seq
    return buckets, flat_offset
