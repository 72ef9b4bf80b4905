"""Multi-head self-attention on torch's scaled_dot_product_attention."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig


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
        batch, seq_len, width = hidden.shape
        # [batch, seq, 3 * hidden] -> 3 x [batch, heads, seq, head_size]
        qkv = self.qkv(hidden).view(batch, seq_len, 3, self.num_heads, self.head_size)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=self.dropout_prob if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, seq_len, width)
        return self.output(attended)
