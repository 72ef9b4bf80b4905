"""The CPU dropout (pytorch/dropout.py): the keep rate and scale of F.dropout, its gradient,
the seeded generator; and attention with it equal to torch's attention when nothing drops."""
import torch
import torch.nn.functional as F

from spacy_bert_cls.pytorch.attention import _attention_with_dropout
from spacy_bert_cls.pytorch.dropout import Dropout, dropout, keep_mask


def test_keep_rate_scale_and_gradient():
    torch.manual_seed(0)
    x = torch.randn(1000, 384, requires_grad=True)
    y = dropout(x, 0.1, True)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.9) < 0.003  # 384,000 draws: sd 0.0005
    assert torch.allclose(y[kept], x[kept] / 0.9)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.9)


def test_masks_are_uniform_per_position_and_seeded():
    keep = torch.stack([keep_mask(torch.Size([7, 5]), 0.75, torch.device("cpu")) for _ in range(4000)]).float()
    assert float((keep.mean(0) - 0.75).abs().max()) < 0.035  # each position, 4,000 draws: sd 0.007
    torch.manual_seed(3)
    a = keep_mask(torch.Size([10, 10]), 0.5, torch.device("cpu"))
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask(torch.Size([10, 10]), 0.5, torch.device("cpu")))


def test_eval_mode_and_edge_rates_pass_through():
    x = torch.randn(4, 8)
    assert dropout(x, 0.1, False) is x and dropout(x, 0.0, True) is x
    assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))
    # a rate under 2**-17 keeps every element (its threshold, 32768, is past int16's range:
    # compared as is, it dropped every element)
    torch.testing.assert_close(dropout(x, 1e-7, True), x / (1 - 1e-7))
    module = Dropout(0.5).eval()
    assert module(x) is x and module.state_dict() == {}


def test_attention_without_drops_is_torchs_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 6, 8) for _ in range(3))
    mask = torch.ones(3, 1, 1, 6, dtype=torch.bool)
    mask[1, ..., 4:] = False
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(_attention_with_dropout(q, k, v, mask, 0.0), expected, atol=1e-6)
    assert torch.allclose(_attention_with_dropout(q, k, v, None, 0.0), F.scaled_dot_product_attention(q, k, v),
                          atol=1e-6)
