"""Padding-free execution: the pieces of many windows in one flat matrix.

Buckets of windows come padded to their longest ([n, seq] with a mask). The linear layers,
LayerNorms and GELUs are position-wise, so they run on the real pieces alone, stacked into
one [n_real, hidden] matrix for all buckets: no work for padding and one matrix product per
layer instead of one per bucket. Only attention needs the windows apart: each bucket is
scattered back into its padded [n, seq] shape for scaled_dot_product_attention and
gathered again.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor


@dataclass
class PackedGroup:
    """One bucket's place in the packed matrix.

    start, end (int): its rows of the packed matrix.
    rows, seq (int): its padded shape.
    index (Tensor[end - start] long or None): the padded position (row * seq + column) of
        each packed row; None when the bucket has no padding.
    mask (Tensor[rows, 1, 1, seq] bool or None): the attention mask; None without padding.
    """

    start: int
    end: int
    rows: int
    seq: int
    index: Optional[Tensor]
    mask: Optional[Tensor]


@dataclass
class PackedLayout:
    """groups: the buckets in order. padded_to_packed (Tensor[sum rows * seq], long): the
    packed row of each padded position (-1 for padding), in the buckets' order."""

    groups: List[PackedGroup]
    padded_to_packed: Tensor

    @property
    def n_rows(self) -> int:
        return self.groups[-1].end if self.groups else 0


def pack(buckets: Sequence[Tuple[Tensor, Optional[Tensor]]]) -> Tuple[Tensor, Tensor, PackedLayout]:
    """buckets: (input_ids [n, seq], attention_mask [n, seq] bool or None) each.

    RETURNS: piece ids [n_real], position ids [n_real], and the layout.
    """
    ids, positions, groups, maps = [], [], [], []
    start = 0
    for input_ids, mask in buckets:
        rows, seq = input_ids.shape
        columns = torch.arange(seq, device=input_ids.device).expand(rows, seq)
        if mask is None or bool(mask.all()):
            index, attention = None, None
            ids.append(input_ids.reshape(-1))
            positions.append(columns.reshape(-1))
            packed_rows = torch.arange(start, start + rows * seq, device=input_ids.device)
        else:
            flat_mask = mask.reshape(-1)
            index = flat_mask.nonzero().squeeze(1)
            attention = mask[:, None, None, :]
            ids.append(input_ids.reshape(-1).index_select(0, index))
            positions.append(columns.reshape(-1).index_select(0, index))
            packed_rows = torch.full((rows * seq,), -1, dtype=torch.long, device=input_ids.device)
            packed_rows[index] = torch.arange(start, start + index.shape[0], device=input_ids.device)
        end = start + ids[-1].shape[0]
        groups.append(PackedGroup(start, end, rows, seq, index, attention))
        maps.append(packed_rows)
        start = end
    return torch.cat(ids), torch.cat(positions), PackedLayout(groups, torch.cat(maps))


def unpack_group(packed: Tensor, group: PackedGroup) -> Tensor:
    """The group's rows of `packed` ([n_real, width]) in its padded shape [rows, seq, width]
    (zeros at padding)."""
    part = packed[group.start:group.end]
    if group.index is None:
        return part.reshape(group.rows, group.seq, -1)
    full = part.new_zeros((group.rows * group.seq, part.shape[1])).index_copy(0, group.index, part)
    return full.reshape(group.rows, group.seq, -1)


def repack_group(padded: Tensor, group: PackedGroup) -> Tensor:
    """The inverse of unpack_group: [rows, seq, width] -> the real rows [n, width]."""
    flat = padded.reshape(group.rows * group.seq, -1)
    return flat if group.index is None else flat.index_select(0, group.index)
