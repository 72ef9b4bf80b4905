"""The encoder's one-step Adam (models/adam.py) against thinc's own, parameter by parameter."""
import numpy
import pytest
import torch
from thinc.api import Adam, SGD, torch2xp, xp2torch

from spacy_bert_cls.models import adam


def _thinc_step(optimizer, keyed):
    for key, param, grad in keyed:
        data, _ = optimizer(key, torch2xp(param.data), torch2xp(grad))
        param.data = xp2torch(data, requires_grad=True)
        grad.zero_()


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    shapes = [(7, 5), (5,), (300, 4), (1,)]
    return [torch.nn.Parameter(torch.randn(*s, generator=g)) for s in shapes]


@pytest.mark.parametrize("settings", [
    dict(learn_rate=0.01),
    dict(learn_rate=0.01, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0),
    dict(learn_rate=0.003, L2=0.1, L2_is_weight_decay=False, grad_clip=0.5, beta1=0.8, beta2=0.99, eps=1e-6),
])
def test_adam_step_matches_thinc(settings):
    ours, theirs = _params(0), _params(0)
    # use_averages off, as in our configs (thinc's default has it on, which takes thinc's path)
    opt_ours, opt_theirs = Adam(use_averages=False, **settings), Adam(use_averages=False, **settings)
    assert adam.foreach_supported(opt_ours)
    g = torch.Generator().manual_seed(1)
    for step in range(5):
        grads = [torch.randn(p.shape, generator=g) * (3.0 if step % 2 else 0.1) for p in ours]
        # the third parameter misses the first step: its bias correction counts its own steps
        skip = {2} if step == 0 else set()
        keyed = [((1, f"p{i}"), p, grad.clone()) for i, (p, grad) in enumerate(zip(ours, grads)) if i not in skip]
        reference = [((1, f"p{i}"), p, grad.clone()) for i, (p, grad) in enumerate(zip(theirs, grads)) if i not in skip]
        adam.step(opt_ours, keyed)
        _thinc_step(opt_theirs, reference)
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert opt_ours.nr_update == opt_theirs.nr_update


def test_other_optimizers_take_thincs_path():
    ours, theirs = _params(0), _params(0)
    assert not adam.foreach_supported(SGD(0.1))
    adam.step(SGD(0.1), [((1, "p"), ours[0], torch.ones_like(ours[0]))])
    _thinc_step(SGD(0.1), [((1, "p"), theirs[0], torch.ones_like(theirs[0]))])
    assert not torch.equal(ours[0], _params(0)[0]), "a step was taken"
    numpy.testing.assert_array_equal(ours[0].detach().numpy(), theirs[0].detach().numpy())


@pytest.mark.parametrize("weight_decay", [True, False])
def test_the_clip_left_out_after_a_global_clip_changes_nothing(weight_decay):
    """clip_each=False where the whole gradient was clipped to grad_clip: the same step as
    thinc's (with coupled L2 the clip is made anyway: the L2 term comes after the global clip)."""
    settings = dict(learn_rate=0.01, L2=0.5, L2_is_weight_decay=weight_decay, grad_clip=0.5, use_averages=False)
    ours, theirs = _params(0), _params(0)
    opt_ours, opt_theirs = Adam(**settings), Adam(**settings)
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=g) * 5.0 for p in ours]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in grads])))
        grads = [x * (0.5 / (norm + 1e-6)) for x in grads]  # the global clip
        adam.step(opt_ours, [((1, f"p{i}"), p, x.clone()) for i, (p, x) in enumerate(zip(ours, grads))], clip_each=False)
        _thinc_step(opt_theirs, [((1, f"p{i}"), p, x.clone()) for i, (p, x) in enumerate(zip(theirs, grads))])
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def _sparse(dense_grad, rows):
    """dense_grad's `rows` as a sparse gradient, uncoalesced (a row twice, as autograd gives
    the embedding lookup of a repeated piece)."""
    index = torch.tensor(rows + rows[:1])
    values = dense_grad[index].clone()
    values[0] *= 0.25
    values[-1] *= 0.75
    return torch.sparse_coo_tensor(index[None], values, dense_grad.shape, check_invariants=True)


@pytest.mark.parametrize("settings", [
    dict(learn_rate=0.01, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0),
    dict(learn_rate=0.003, L2=0.1, L2_is_weight_decay=False, grad_clip=0.5),
    dict(learn_rate=0.01, L2=0.0, grad_clip=0.0),
])
def test_a_sparse_gradient_takes_the_dense_step(settings):
    """A sparse gradient, uncoalesced, is stepped as its dense equivalent."""
    ours, theirs = _params(0), _params(0)
    opt_ours, opt_theirs = Adam(use_averages=False, **settings), Adam(use_averages=False, **settings)
    g = torch.Generator().manual_seed(3)
    for rows in ([3, 17, 200], [17, 40], [5, 299, 3]):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        table = torch.zeros_like(grads[2])
        table[rows] = grads[2][rows]
        grads[2] = table
        sparse = _sparse(table, rows)
        adam.step(opt_ours, [((1, f"p{i}"), p, sparse if i == 2 else x.clone()) for i, (p, x) in enumerate(zip(ours, grads))])
        adam.step(opt_theirs, [((1, f"p{i}"), p, x.clone()) for i, (p, x) in enumerate(zip(theirs, grads))])
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)
