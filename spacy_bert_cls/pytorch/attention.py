"""Multi-head self-attention on torch's scaled_dot_product_attention."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig
from .packing import PackedLayout, repack_group, unpack_group


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
        qkv = self.qkv(hidden)  # one matrix product for all windows
        parts = [repack_group(self.attend(unpack_group(qkv, group), group.mask), group) for group in layout.groups]
        return self.output(parts[0] if len(parts) == 1 else torch.cat(parts))

    def attend(self, qkv: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        """qkv (Tensor[batch, seq, 3 * hidden]) -> the heads' outputs (Tensor[batch, seq, hidden])."""
        batch, seq_len, _ = qkv.shape
        width = self.num_heads * self.head_size
        # [batch, seq, 3 * hidden] -> 3 x [batch, heads, seq, head_size]
        qkv = qkv.view(batch, seq_len, 3, self.num_heads, self.head_size)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=self.dropout_prob if self.training else 0.0,
        )
        return attended.transpose(1, 2).reshape(batch, seq_len, width)
