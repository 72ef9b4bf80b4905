"""Padding-free execution: the pieces of many windows in one flat matrix.

Buckets of windows come padded to their longest ([n, seq] with a mask). The linear layers,
LayerNorms and GELUs are position-wise, so they run on the real pieces alone, stacked into
one [n_real, hidden] matrix for all buckets: no work for padding and one matrix product per
layer instead of one per bucket. Only attention needs the windows apart: one gather puts
every bucket back into its padded [n, seq] shape for scaled_dot_product_attention, and one
gather takes the real rows again (a copy a layer each way, whatever the number of buckets).
There seq may be longer than the bucket's: where the attention kernel runs faster at a longer
length (SelfAttention.attention_length), the extra positions are masked padding.
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class PackedGroup:
    """One bucket's place in the packed and in the padded matrix.

    start, end (int): its rows of the packed matrix.
    padded_start (int): its first row in the attention's padded matrix (the groups'
        [rows * seq] positions one after another).
    rows, seq (int): its shape there (seq: its attention length, at least the bucket's).
    mask (Tensor[rows, 1, 1, seq] bool or None): the attention mask; None without padding.
    real (Tensor[end - start] long or None): the positions of its packed rows among its own
        rows * seq padded ones; None without padding.
    """

    start: int
    end: int
    padded_start: int
    rows: int
    seq: int
    mask: Optional[Tensor]
    real: Optional[Tensor] = None


@dataclass
class PackedLayout:
    """groups: the buckets in order, each at its attention length (see pack).
    padded_to_packed (Tensor[sum rows * seq], long): the packed row of each position of the
        buckets as given (-1 for padding), in the buckets' order.
    gather (Tensor[sum rows * group seq], long or None): the packed row each position of
        the attention's padded matrix is read from: its own, or row 0 for padding (a masked
        key, a query whose output is dropped); None when nothing is padded (the padded
        matrix is the packed one).
    scatter (Tensor[n_real], long or None): the attention's padded position of each packed row.
    """

    groups: List[PackedGroup]
    padded_to_packed: Tensor
    gather: Optional[Tensor]
    scatter: Optional[Tensor]

    @property
    def n_rows(self) -> int:
        return self.groups[-1].end if self.groups else 0


def pack(buckets: Sequence[Tuple[Tensor, Optional[Tensor]]],
         attention_length: Callable[[int], int] = int) -> Tuple[Tensor, Tensor, PackedLayout]:
    """buckets: (input_ids [n, seq], attention_mask [n, seq] bool or None) each.
    attention_length: the length (at least seq) each bucket's windows are padded to for
        attention (SelfAttention.attention_length); by default their own.

    RETURNS: piece ids [n_real], position ids [n_real], and the layout.
    """
    ids, positions, groups, maps, spans = [], [], [], [], []
    start = padded_start = 0
    for input_ids, mask in buckets:
        rows, seq = input_ids.shape
        device = input_ids.device
        columns = torch.arange(seq, device=device).expand(rows, seq)
        if mask is None or bool(mask.all()):
            mask = None
            ids.append(input_ids.reshape(-1))
            positions.append(columns.reshape(-1))
            packed_rows = torch.arange(start, start + rows * seq, device=device)
        else:
            index = mask.reshape(-1).nonzero().squeeze(1)
            ids.append(input_ids.reshape(-1).index_select(0, index))
            positions.append(columns.reshape(-1).index_select(0, index))
            packed_rows = torch.full((rows * seq,), -1, dtype=torch.long, device=device)
            packed_rows[index] = torch.arange(start, start + index.shape[0], device=device)
        length = attention_length(seq)
        attention, spanned, real = None, packed_rows, None
        if mask is not None or length > seq:
            keys = torch.ones((rows, seq), dtype=torch.bool, device=device) if mask is None else mask
            keys = F.pad(keys, (0, length - seq), value=False)
            attention = keys[:, None, None, :]
            real = keys.reshape(-1).nonzero().squeeze(1)
            spanned = F.pad(packed_rows.view(rows, seq), (0, length - seq), value=-1).reshape(-1)
        end = start + ids[-1].shape[0]
        groups.append(PackedGroup(start, end, padded_start, rows, length, attention, real))
        maps.append(packed_rows)
        spans.append(spanned)
        start, padded_start = end, padded_start + rows * length
    gather = scatter = None
    if any(group.mask is not None for group in groups):
        spanned = torch.cat(spans)
        gather = spanned.clamp(min=0)
        scatter = (spanned >= 0).nonzero().squeeze(1)
    return torch.cat(ids), torch.cat(positions), PackedLayout(groups, torch.cat(maps), gather, scatter)


def bucket_rows(n: int) -> int:
    """n rounded up to a row count of a bounded set: a multiple of 16 below 128, then 8
    steps an octave (at most 12.5% more rows; 56 counts up to 8,192).

    oneDNN's kernels (OneDNNLinear, int8 on the oneDNN engine) build and keep a primitive
    for every row count they see, about 1 MiB a weight matrix each: a process serving
    batches of every size grew by 700 MiB in 500 requests (MiniLM, 1 to 16 texts each).
    The packed rows of a batch vary with its texts, so where such layers predict, the
    encoder pads its packed rows to these counts (BertModel.row_buckets)."""
    if n <= 128:
        return -(-n // 16) * 16
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def to_padded(packed: Tensor, layout: PackedLayout) -> Tensor:
    """[n_real, width] -> every bucket's [rows * seq, width] one after another (padding
    rows hold a copy of row 0: see PackedLayout.gather). One gather for all buckets."""
    return packed if layout.gather is None else packed.index_select(0, layout.gather)


def to_packed(padded: Tensor, layout: PackedLayout) -> Tensor:
    """The inverse of to_padded: the real rows of the padded matrix, in packed order."""
    return padded if layout.scatter is None else padded.index_select(0, layout.scatter)


def group_rows(padded: Tensor, group: PackedGroup) -> Tensor:
    """The group's [rows, seq, width] view of the padded matrix."""
    return padded[group.padded_start:group.padded_start + group.rows * group.seq].view(group.rows, group.seq, -1)
