"""One post-norm BERT encoder layer: attention and feed-forward, each with a residual."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import SelfAttention
from .config import BertConfig
from .dropout import dropout
from .packing import PackedLayout


def activation(name: str) -> nn.Module:
    if name == "gelu":
        return nn.GELU()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    if name == "relu":
        return nn.ReLU()
    if name in ("silu", "swish"):
        return nn.SiLU()
    raise ValueError(f"Unsupported activation {name!r}")


def activate_in_place(activation: nn.Module, x: Tensor) -> Tensor:
    """`activation(x)` written over x (without autograd only). A module of another kind
    that can write over its input says so with an `in_place(x)` method (int8's, see
    quantized.py)."""
    if hasattr(activation, "in_place"):
        return activation.in_place(x)
    if isinstance(activation, nn.GELU):
        return torch.ops.aten.gelu_(x, approximate=activation.approximate)
    if isinstance(activation, nn.ReLU):
        return x.relu_()
    if isinstance(activation, nn.SiLU):
        return F.silu(x, inplace=True)
    return activation(x)


class FeedForward(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = activation(config.hidden_act)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden (Tensor[batch, seq, hidden]) -> Tensor[batch, seq, hidden]"""
        inner = self.intermediate(hidden)
        if torch.is_grad_enabled():
            return self.output(self.activation(inner))
        # Without autograd nothing needs the layer's input kept: one [pieces, intermediate]
        # matrix less a layer, the largest of them.
        return self.output(activate_in_place(self.activation, inner))


class EncoderLayer(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout_prob = config.hidden_dropout_prob

    def forward(self, hidden: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        """
        hidden (Tensor[batch, seq, hidden]): the layer's input.
        attention_mask (Tensor[batch, 1, 1, seq], bool): see SelfAttention.
        RETURNS (Tensor[batch, seq, hidden]): the layer's output.
        """
        return self._residuals(hidden, self.attention(hidden, attention_mask))

    def forward_packed(self, hidden: Tensor, layout: PackedLayout) -> Tensor:
        """hidden (Tensor[n_real, hidden]) -> Tensor[n_real, hidden]: the real pieces of
        every window, as packing.py lays them out."""
        return self._residuals(hidden, self.attention.forward_packed(hidden, layout))

    def _residuals(self, hidden: Tensor, attended: Tensor) -> Tensor:
        if not self.training and not torch.is_grad_enabled():
            # Prediction: each sum written over its sublayer's fresh output, the same numbers
            # with two [pieces, hidden] matrices less a layer to allocate; not where autocast
            # gives the sublayer a lower dtype than the residual's (the sum is made in fp32).
            hidden = self.attention_norm(residual_sum(attended, hidden))
            return self.ffn_norm(residual_sum(self.ffn(hidden), hidden))
        attended = dropout(attended, self.dropout_prob, self.training)
        hidden = self.attention_norm(hidden + attended)
        transformed = dropout(self.ffn(hidden), self.dropout_prob, self.training)
        return self.ffn_norm(hidden + transformed)


def residual_sum(fresh: Tensor, residual: Tensor, scale: Optional[Tensor] = None) -> Tensor:
    """fresh + residual * scale (scale None: 1; a per-channel scale is int8's, see
    quantized.py), written over `fresh` (a sublayer's output, read by nothing else) where it
    has the sum's dtype."""
    if fresh.dtype != residual.dtype:
        return fresh + (residual if scale is None else residual * scale)
    return fresh.add_(residual) if scale is None else fresh.addcmul_(residual, scale)
