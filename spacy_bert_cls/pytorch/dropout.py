"""Dropout whose random mask is cheap to draw on the CPU.

torch's CPU dropout draws one 32-bit random number per element (bernoulli_), which on
BERT's training shapes costs more than the matrix product beside it: 11% of a MiniLM
training step on 2 cores (torch.profiler, docs/benchmarks.md). Here the mask comes from
64-bit random words, each cut into four 16-bit numbers, and an element is kept where its
number is below round((1 - p) * 65536): one draw for four elements, the same default
generator (torch.manual_seed reproduces it), and a keep probability within 2**-17 of
1 - p. Forward and backward of a [2000, 384] tensor: 1.9 ms against F.dropout's 5.3.

On other devices torch's own dropout is used: it is fused there, with its own generator.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _KeepAndScale(torch.autograd.Function):
    """x * keep * scale, with the boolean mask (a byte an element) saved for backward. (A
    where, not a product with the mask: that converts the mask to x's dtype first, a pass
    and a float copy of the mask each way. A dropped NaN or inf gives 0 here, where
    F.dropout's product gives NaN; finite values are the same.)"""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x, 0.0).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None, None


def keep_mask(shape: torch.Size, keep: float, device: torch.device) -> Tensor:
    """A boolean Tensor[shape], each element True with probability `keep` (to 2**-17)."""
    threshold = round(keep * 65536)
    if threshold >= 65536:  # p under 2**-17: every element kept (an int16 is never < 32768)
        return torch.ones(shape, dtype=torch.bool, device=device)
    n = shape.numel()
    words = torch.empty(((n + 3) // 4,), dtype=torch.int64, device=device).random_(-2**63, None)
    numbers = words.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    return numbers < threshold - 32768


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """F.dropout(x, p, training), with the mask drawn as the module docstring says on the CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    return _KeepAndScale.apply(x, keep_mask(x.shape, 1.0 - p, x.device), 1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """nn.Dropout on `dropout` (no parameters: saved pipelines are unchanged)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
