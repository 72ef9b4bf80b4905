"""thinc's Adam on the encoder's torch parameters, one foreach step for all of them.

thinc's PyTorchShim steps a torch model one parameter at a time through numpy: for each of
the encoder's ~100 tensors a Python call, a view, thinc's Cython Adam and a write back. On a
small encoder that was 30% of a training step (benchmarks/host_overhead.py --profile). This
is the same update (thinc.optimizers.Optimizer.__call__ then its _adam, term for term: L2 or
decoupled weight decay, each parameter's gradient clipped on its own, bias-corrected Adam)
done with torch's fused Adam kernel and multi-tensor `_foreach_` ops, on whatever device the
weights are: on MiniLM (22.7 M weights, 2 threads) 324 ms a step through thinc, 155 with
`_foreach_` ops alone (one pass over memory each), less fused. Where thinc zeroes the
gradient, the caller drops it instead (see step). The optimizer keeps its own bookkeeping
(nr_update, the moments under the same keys), so the moments of these keys are torch
tensors and only this module steps them.

A sparse gradient (the piece embeddings': pytorch/windowed.py) is stepped as its dense
equivalent; BertShim lays it out on a buffer it keeps (models/encoder.py).

Optimizers this does not reproduce (RAdam, weight averaging, plain SGD, a subclass) take
thinc's own path.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from thinc.api import Optimizer, torch2xp, xp2torch

Keyed = Tuple[Tuple[int, str], torch.Tensor, torch.Tensor]  # (optimizer key, parameter, gradient)


def foreach_supported(optimizer) -> bool:
    """Whether `optimizer` is thinc's plain Adam, which adam_step reproduces."""
    return (type(optimizer) is Optimizer and not optimizer.use_radam and optimizer.b1 > 0.0
            and optimizer.b2 > 0.0 and optimizer.averages is None and hasattr(torch, "_fused_adam_"))


def step(optimizer, keyed: Sequence[Keyed], clip_each: bool = True) -> None:
    """One update of every (key, parameter, gradient) by `optimizer`: adam_step where
    foreach_supported, else thinc's own call per parameter. The gradients are spent: the
    caller drops them (param.grad = None), which costs nothing where zeroing them was a pass
    over every weight and made the next backward pass add to zeros rather than take its own."""
    if foreach_supported(optimizer):
        adam_step(optimizer, keyed, clip_each)
        return
    for key, param, grad in keyed:
        data, _ = optimizer(key, torch2xp(param.data), torch2xp(grad.to_dense() if grad.is_sparse else grad))
        param.data = xp2torch(data, requires_grad=True, device=param.device)


@torch.no_grad()
def adam_step(optimizer: Optimizer, keyed: Sequence[Keyed], clip_each: bool = True) -> None:
    """thinc's Adam step (lr_scale 1) for every (key, parameter, gradient) at once, on
    torch's fused Adam kernel (one pass over the weights, moments and gradient).

    clip_each (bool): clip each gradient by the optimizer's grad_clip, as thinc does; False
        where the whole gradient was just clipped by its global norm to grad_clip (no
        parameter's norm can then be above it).
    """
    keyed = [(key, param, grad) for key, param, grad in keyed if grad.numel()]
    if not keyed:
        return
    params = [param.data for _, param, _ in keyed]
    grads = [grad.to_dense() if grad.is_sparse else grad for _, _, grad in keyed]
    if optimizer.L2 and not optimizer.L2_is_weight_decay:
        torch._foreach_add_(grads, params, alpha=optimizer.L2)
        clip_each = True  # the L2 term came after any global clip: a norm may be over again
    if optimizer.grad_clip and clip_each:
        _clip_each(grads, float(optimizer.grad_clip))
    mom1, mom2 = _moments(optimizer, keyed)
    b1, b2 = optimizer.b1, optimizer.b2
    for nr_update, members in _by_step_count(optimizer, keyed).items():
        # thinc: w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps); torch's kernel
        # adds its eps after dividing sqrt(v) by sqrt(1 - b2^t): the same with eps scaled so.
        eps = optimizer.eps / (1.0 - b2 ** nr_update) ** 0.5
        steps = [torch.tensor(float(nr_update), device=params[members[0]].device)] * len(members)
        torch._fused_adam_([params[i] for i in members], [grads[i] for i in members], [mom1[i] for i in members],
                           [mom2[i] for i in members], [], steps, lr=optimizer.learn_rate, beta1=b1, beta2=b2,
                           weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
    if optimizer.L2 and optimizer.L2_is_weight_decay:
        torch._foreach_add_(params, params, alpha=-optimizer.learn_rate * optimizer.L2)


def _clip_each(grads: List[torch.Tensor], threshold: float) -> None:
    """thinc's clip_gradient on each gradient: scaled to norm `threshold` where its norm is
    at least that."""
    norms = torch.stack(torch._foreach_norm(grads))
    factors = torch.where(norms >= threshold, threshold / norms, torch.ones_like(norms))
    torch._foreach_mul_(grads, list(factors.unbind()))


def _moments(optimizer: Optimizer, keyed: Sequence[Keyed]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The first and second moments of each key (zeros at its first step), as torch tensors
    shaped like the parameter, kept in the optimizer's own mom1 / mom2."""
    for key, param, _ in keyed:
        for store in (optimizer.mom1, optimizer.mom2):
            moment = store.get(key)
            if moment is None:
                store[key] = torch.zeros_like(param.data)
            elif not isinstance(moment, torch.Tensor):  # thinc's own 1-d array, from its path
                store[key] = xp2torch(moment, device=param.device).reshape(param.shape)
    return [optimizer.mom1[key] for key, _, _ in keyed], [optimizer.mom2[key] for key, _, _ in keyed]


def _by_step_count(optimizer: Optimizer, keyed: Sequence[Keyed]) -> Dict[int, List[int]]:
    """Counts this step in optimizer.nr_update; RETURNS the positions of `keyed` by their
    count (one group, unless some parameter missed earlier steps)."""
    groups: Dict[int, List[int]] = {}
    for i, (key, _, _) in enumerate(keyed):
        optimizer.nr_update[key] += 1
        groups.setdefault(optimizer.nr_update[key], []).append(i)
    return groups
