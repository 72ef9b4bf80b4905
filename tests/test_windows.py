"""Windows over word pieces: nothing truncated, overlaps combined, padding kept small."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_bert_cls.windows import plan_windows, window_spans


def _combine(plan):
    """What WindowedBert does, on the ids themselves: each piece must come back."""
    flat = numpy.concatenate([b.input_ids.reshape(-1) for b in plan.buckets]).astype("float64")
    out = numpy.zeros(plan.n_pieces)
    numpy.add.at(out, plan.piece_targets, flat[plan.piece_rows] * plan.piece_weights)
    return out, flat


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 60), min_size=1, max_size=8),
    window=st.integers(3, 20),
    stride_frac=st.floats(0.05, 1.0),
    overlap=st.sampled_from(["center", "mean"]),
)
def test_every_piece_comes_back_once(lengths, window, stride_frac, overlap):
    stride = max(1, int((window - 2) * stride_frac))
    rng = numpy.random.default_rng(0)
    docs = [rng.integers(10, 1000, n) for n in lengths]
    plan = plan_windows(docs, cls_id=1, sep_id=2, pad_id=0, window_size=window,
                        stride=stride, overlap=overlap, max_batch_pieces=64)
    out, flat = _combine(plan)
    assert numpy.allclose(out, numpy.concatenate(docs)) if sum(lengths) else plan.n_pieces == 0
    assert (flat[plan.cls_rows] == 1).all()
    assert plan.doc_windows.sum() == len(plan.cls_rows)
    for bucket in plan.buckets:
        assert bucket.input_ids.shape[1] <= window
        rows = bucket.attention_mask.sum(1)
        assert (bucket.input_ids[numpy.arange(len(rows)), rows - 1] == 2).all()  # [SEP] ends each window


def test_center_takes_each_piece_from_its_most_central_window():
    # content 6, stride 4: windows [0, 6) and [4, 10); pieces 4 and 5 are in both.
    plan = plan_windows([numpy.arange(100, 110)], cls_id=1, sep_id=2, pad_id=0,
                        window_size=8, stride=4, overlap="center", max_batch_pieces=4096)
    # Piece 4: position 4 of window 0 (1 piece of context after it) beats position 0
    # of window 1; piece 5: position 1 of window 1 beats the last of window 0.
    window_of = (plan.piece_rows // plan.buckets[0].input_ids.shape[1]).tolist()
    assert window_of == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


def test_long_doc_is_fully_covered():
    spans = window_spans(5000, 254, 192)
    assert spans[0][0] == 0 and spans[-1][1] == 5000
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # consecutive windows overlap


def test_buckets_keep_padding_small():
    rng = numpy.random.default_rng(0)
    docs = [rng.integers(10, 1000, n) for n in rng.integers(5, 120, 256)]
    plan = plan_windows(docs, cls_id=1, sep_id=2, pad_id=0, max_batch_pieces=4096, window_size=128, stride=96)
    padded = sum(b.input_ids.size for b in plan.buckets)
    real = sum(int(b.attention_mask.sum()) for b in plan.buckets)
    assert real / padded > 0.85


@pytest.mark.parametrize("window,stride", [(2, 1), (10, 0), (10, 9)])
def test_bad_window_settings(window, stride):
    with pytest.raises(ValueError, match="window_size"):
        plan_windows([], cls_id=1, sep_id=2, pad_id=0, max_batch_pieces=4096, window_size=window, stride=stride)
