"""Multi-head self-attention on torch's scaled_dot_product_attention."""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig
from .dropout import dropout
from .packing import PackedLayout, group_rows, to_packed, to_padded


class SelfAttention(nn.Module):
    """Self-attention with one fused query/key/value projection.

    The checkpoint's separate query, key and value matrices are stacked into
    `qkv` when loading (see checkpoint/hf.py): one matrix product instead of three.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.dropout_prob = config.attention_probs_dropout_prob
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        """
        hidden (Tensor[batch, seq, hidden]): the layer's input.
        attention_mask (Tensor[batch, 1, 1, seq], bool): True where a key may be
            attended to (not padding); None when nothing is padded.
        RETURNS (Tensor[batch, seq, hidden]): the projected attention output.
        """
        return self.output(self.attend(self.qkv(hidden), attention_mask))

    def forward_packed(self, hidden: Tensor, layout: PackedLayout) -> Tensor:
        """
        hidden (Tensor[n_real, hidden]): the real pieces of every window (see packing.py).
        layout (PackedLayout): where each window's pieces are.
        RETURNS (Tensor[n_real, hidden]): the projected attention output.
        """
        if not hidden.shape[0]:  # no real piece (only padding): nothing to attend
            return self.output(hidden)
        qkv = to_padded(self.qkv(hidden), layout)  # one matrix product for all windows
        width = self.num_heads * self.head_size
        if not torch.is_grad_enabled():
            # Prediction: each group's real rows written straight into the packed matrix
            # (the kernel's output for strided q, k, v is [rows, seq, heads, head_size] in
            # memory, so its [rows * seq, width] view is free).
            attended = hidden.new_empty((hidden.shape[0], width), dtype=qkv.dtype)
            for group in layout.groups:
                heads = self._heads(group_rows(qkv, group), group.mask)  # [rows, heads, seq, head_size]
                rows = heads.transpose(1, 2).reshape(group.rows * group.seq, width)
                if group.real is None:
                    attended[group.start:group.end] = rows
                else:
                    torch.index_select(rows, 0, group.real, out=attended[group.start:group.end])
            if attended.shape[0] > layout.n_rows:  # padded rows (BertModel._pads_rows): copies of the first
                attended[layout.n_rows:] = attended[:1]
            return self.output(attended)
        # Training: split and cat, whose backward passes hand each group its rows as views.
        # Slices of one matrix (as above) cost each group's backward pass a zeroed copy of
        # the whole padded matrix (qkv's) and a clone of the whole output's gradient.
        parts = qkv.split([group.rows * group.seq for group in layout.groups])
        outputs = [self._heads(part.view(group.rows, group.seq, -1), group.mask).transpose(1, 2).reshape(-1, width)
                   for group, part in zip(layout.groups, parts)]
        return self.output(to_packed(torch.cat(outputs) if len(outputs) > 1 else outputs[0], layout))

    def attention_length(self, seq: int, device: torch.device) -> int:
        """The length to pad windows of `seq` pieces to for attention on `device`.

        torch's CPU flash-attention kernel (scaled_dot_product_attention without dropout) is
        fastest where the length is a multiple of the CPU's fp32 vector width, 16 with
        AVX-512 and 8 with AVX2, and slows steeply in between. Measured with 12 heads of 32
        and 2 threads: on AVX-512, 47 pieces take 2.1x the time of 48 and 24 take 1.2x 32;
        with AVX2 kernels (ATEN_CPU_CAPABILITY=avx2 on the same CPU), 47 take 1.2x 48 and
        23 take 1.4x 24. A length at least half a width past a multiple is padded to the
        next one; masked keys cost only their share of the kernel, where the kernel's slow
        path costs more. Elsewhere (CUDA, other CPUs, or the CPU's math path with dropout,
        which pays for every padded position) the length is kept.
        """
        if device.type != "cpu" or (self.training and self.dropout_prob > 0):
            return seq
        width = {"AVX512": 16, "AVX2": 8}.get(torch.backends.cpu.get_cpu_capability(), 0)
        if not width or seq % width < width // 2:
            return seq
        return seq + width - seq % width

    def attend(self, qkv: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        """qkv (Tensor[batch, seq, 3 * hidden]) -> the heads' outputs (Tensor[batch, seq, hidden])."""
        batch, seq_len, _ = qkv.shape
        return self._heads(qkv, attention_mask).transpose(1, 2).reshape(batch, seq_len, self.num_heads * self.head_size)

    def _heads(self, qkv: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        """qkv (Tensor[batch, seq, 3 * hidden]) -> each head's output (Tensor[batch, heads, seq, head_size])."""
        batch, seq_len, width = qkv.shape
        # [batch, seq, 3 * hidden] -> 3 x [batch, heads, seq, head_size], as views (split's
        # backward pass is one cat into qkv's layout; unbind's was a stack and a copy back)
        query, key, value = (part.view(batch, seq_len, self.num_heads, self.head_size).transpose(1, 2)
                             for part in qkv.split(width // 3, dim=-1))
        if self.training and self.dropout_prob > 0 and qkv.device.type == "cpu":
            return _attention_with_dropout(query, key, value, attention_mask, self.dropout_prob)
        return F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=self.dropout_prob if self.training else 0.0,
        )


def _attention_with_dropout(query: Tensor, key: Tensor, value: Tensor, mask: Optional[Tensor], p: float) -> Tensor:
    """What scaled_dot_product_attention does on the CPU when it drops attention weights (its
    math path: the product, the mask, softmax, dropout, the product), with dropout.dropout's
    cheaper mask. Every query row of ours has a key to attend to (packing.py), so a plain
    softmax. query, key, value (Tensor[batch, heads, seq, head_size]); mask [batch, 1, 1, seq]
    bool (True: attend) or None. RETURNS Tensor[batch, heads, seq, head_size].

    The scale and the mask are baddbmm's alpha and its added input (0, or the dtype's lowest
    where masked: exp() of either gives 0 after softmax's shift), one product where a scaled
    product and a masked fill made two more passes over the weights each way."""
    batch, heads, seq, size = query.shape
    if mask is None:
        bias, beta = query.new_zeros((1, 1, 1)), 0.0
    else:
        bias = torch.zeros(mask.shape, dtype=query.dtype, device=query.device)
        bias = bias.masked_fill_(~mask, torch.finfo(query.dtype).min).expand(batch, heads, 1, seq)
        bias, beta = bias.reshape(batch * heads, 1, seq), 1.0
    scores = torch.baddbmm(bias, query.reshape(batch * heads, seq, size),
                           key.reshape(batch * heads, seq, size).transpose(1, 2), beta=beta,
                           alpha=1.0 / math.sqrt(size))
    weights = dropout(scores.softmax(dim=-1), p, True)
    return torch.bmm(weights, value.reshape(batch * heads, seq, size)).view(batch, heads, seq, size)
