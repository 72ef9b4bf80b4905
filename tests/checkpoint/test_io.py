"""tensor_views: safetensors bytes read as views, as safetensors' own loader reads them."""
import ctypes

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from spacy_bert_cls.checkpoint.io import tensor_views

TENSORS = {
    "weight": torch.randn(5, 3, generator=torch.Generator().manual_seed(0)),
    "half": torch.randn(4).to(torch.bfloat16),
    "ids": torch.arange(7),
    "flags": torch.tensor([True, False, True]),
    "small": torch.tensor([1, -2], dtype=torch.int8),
    "empty": torch.zeros(0, 4),
    "scalar": torch.tensor(2.5),
}


def test_views_equal_safetensors_load():
    data = save(TENSORS, metadata={"format": "pt"})
    expected, got = load(data), tensor_views(data)
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name


def test_views_share_the_bytes():
    """No copy: each tensor's memory lies inside the bytes object."""
    data = save({"weight": TENSORS["weight"]})
    start = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value  # the bytes' own buffer
    view = tensor_views(data)["weight"]
    assert start < view.data_ptr() and view.data_ptr() + 15 * 4 <= start + len(data)


@pytest.mark.parametrize("cut", [0, 5, 20, -4])
def test_malformed_bytes_raise_safetensors_errors(cut):
    data = save(TENSORS)
    with pytest.raises(SafetensorError):
        tensor_views(data[:cut] if cut >= 0 else data[:cut])


def test_offsets_that_lie_about_the_shape_are_refused():
    data = bytearray(save({"weight": TENSORS["weight"]}))
    header = bytes(data[8:8 + int.from_bytes(data[:8], "little")])
    lying = header.replace(b"[5,3]", b"[5,4]")
    assert lying != header
    data[8:8 + len(header)] = lying
    with pytest.raises(SafetensorError):
        tensor_views(bytes(data))


def test_big_endian_machines_take_safetensors_own_loader(monkeypatch):
    """safetensors stores little-endian; its loader byte-swaps on big-endian machines, views would not."""
    import spacy_bert_cls.checkpoint.io as io

    monkeypatch.setattr(io, "_LITTLE_ENDIAN", False)
    monkeypatch.setattr(io, "_views", lambda data: pytest.fail("views on a big-endian machine"))
    got = io.tensor_views(save({"weight": TENSORS["weight"]}))
    assert torch.equal(got["weight"], TENSORS["weight"])
