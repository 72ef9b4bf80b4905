"""SmoothQuant's scales, and their division of the int8 layers' inputs folded into the encoder.

SmoothQuant (Xiao et al. 2023): activation outliers sit in a few input channels, so each
input channel j of a linear layer is divided by s_j = amax(x_j)^alpha / amax(W_:,j)^(1-alpha)
and the weight's column multiplied by it (Int8Linear, quantized.py): the product is
unchanged, the activations are easier to quantize. The division is not made per call: it is
folded into what computes each input (fold_smoothing), exactly. BERT is post-norm, so a
LayerNorm's output also feeds a residual sum, which multiplies it back.
"""
import copy
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from .encoder import BertModel
from .layer import activate_in_place, residual_sum


def smoothing_scales(linear: nn.Linear, amax: Tensor, alpha: float) -> Tensor:
    """SmoothQuant's s_j = amax(x_j)^alpha / amax(W_:,j)^(1 - alpha), kept in a sane range."""
    weight_max = linear.weight.detach().abs().amax(dim=0).float().clamp(min=1e-5)
    scales = amax.clamp(min=1e-5).pow(alpha) / weight_max.pow(1.0 - alpha)
    return scales.clamp(min=1e-4, max=1e4)


def fold_smoothing(quantized: BertModel, linears: Dict[str, nn.Linear], scales: Dict[str, Tensor]) -> None:
    """SmoothQuant's division of the inputs of every layer's linear layers (`scales` by layer
    name; a layer without scales is left alone), folded into what computes those inputs: in
    `quantized` (quantize_bert's copy of the model, whose modules are its own) and, for the
    linear layers still to be made, in `linears` (by name)."""
    for i in range(len(quantized.layers)):
        _fold_layer(quantized, linears, scales, i)


def _fold_layer(quantized: BertModel, linears: Dict[str, nn.Linear], scales: Dict[str, Tensor], i: int) -> None:
    """Layer i's folds (each division was a per-call multiply of a [pieces, width] matrix, 9%
    of an int8 pipeline's time).

    - The attention output's input is linear in the values: its scales divide the value rows
      of the layer's qkv projection.
    - qkv's and intermediate's inputs are LayerNorm outputs that also feed a residual sum (BERT
      is post-norm): their scales divide the weight and bias of that LayerNorm (before qkv:
      the embeddings' for layer 0, else the previous layer's ffn_norm; before intermediate:
      attention_norm), and the sum multiplies the residual back (_SmoothedLayer), in the
      multiply-add that was an add.
    - The feed-forward output's input is GELU's, which no scale passes: the division follows
      the activation, written over its output (_DividedActivation).
    """
    prefix = f"layers.{i}."
    if prefix + "attention.output" in scales:
        linears[prefix + "attention.qkv"] = _values_divided(linears[prefix + "attention.qkv"],
                                                            scales[prefix + "attention.output"])
    layer = quantized.layers[i]
    if prefix + "ffn.output" in scales:
        layer.ffn.activation = _DividedActivation(layer.ffn.activation, scales[prefix + "ffn.output"])
    qkv_scale, inner_scale = scales.get(prefix + "attention.qkv"), scales.get(prefix + "ffn.intermediate")
    if qkv_scale is None and inner_scale is None:
        return
    if qkv_scale is not None:
        before = quantized.embeddings if i == 0 else quantized.layers[i - 1]
        name = "layer_norm" if i == 0 else "ffn_norm"
        setattr(before, name, _norm_divided(getattr(before, name), qkv_scale))
    if inner_scale is not None:
        layer.attention_norm = _norm_divided(layer.attention_norm, inner_scale)
    quantized.layers[i] = _SmoothedLayer(layer, qkv_scale, inner_scale)


def _values_divided(qkv: nn.Linear, scale: Tensor) -> nn.Linear:
    """A copy of the fused query/key/value projection with the value rows divided by `scale`."""
    width = qkv.out_features // 3
    divided = copy.deepcopy(qkv)
    with torch.no_grad():
        divided.weight[2 * width:] /= scale[:, None]
        divided.bias[2 * width:] /= scale
    return divided


def _norm_divided(norm: nn.LayerNorm, scale: Tensor) -> nn.LayerNorm:
    """A copy of `norm` whose output is divided by `scale` (per channel)."""
    divided = copy.deepcopy(norm)
    with torch.no_grad():
        divided.weight /= scale
        divided.bias /= scale
    return divided


class _DividedActivation(nn.Module):
    """The feed-forward activation, then a per-channel division (the output layer's smoothing
    scales); in prediction written over the activation's input (layer.activate_in_place)."""

    def __init__(self, activation: nn.Module, scale: Tensor) -> None:
        super().__init__()
        self.activation = activation
        self.register_buffer("inverse", (1.0 / scale).float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(x) * self.inverse

    def in_place(self, x: Tensor) -> Tensor:
        return activate_in_place(self.activation, x).mul_(self.inverse)


class _SmoothedLayer(nn.Module):
    """An encoder layer for int8 prediction whose input and attention-norm output arrive
    divided by the SmoothQuant scales of the layers they feed (qkv, intermediate; None:
    undivided): the residual sums multiply them back. Otherwise what EncoderLayer does in
    prediction (sums written over the sublayers' outputs, no dropout), with or without
    autograd: the int8 copy only predicts."""

    def __init__(self, layer: nn.Module, input_scale: Optional[Tensor], hidden_scale: Optional[Tensor]) -> None:
        super().__init__()
        self.attention, self.attention_norm = layer.attention, layer.attention_norm
        self.ffn, self.ffn_norm = layer.ffn, layer.ffn_norm
        self.register_buffer("input_scale", input_scale, persistent=False)
        self.register_buffer("hidden_scale", hidden_scale, persistent=False)

    def forward(self, hidden: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        return self._residuals(hidden, self.attention(hidden, attention_mask))

    def forward_packed(self, hidden: Tensor, layout) -> Tensor:
        return self._residuals(hidden, self.attention.forward_packed(hidden, layout))

    def _residuals(self, hidden: Tensor, attended: Tensor) -> Tensor:
        hidden = self.attention_norm(residual_sum(attended, hidden, self.input_scale))
        return self.ffn_norm(residual_sum(self.ffn(hidden), hidden, self.hidden_scale))
