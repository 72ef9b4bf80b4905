"""Constrained decoding: always valid spans; exact MAP sequence and span probabilities."""
import itertools

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spacy_bert_cls.decoding import TagScheme, decode_batch, path_spans
from spacy_bert_cls.tags import tags_to_spans


def _valid(scheme, seq):
    return (scheme.start[seq[0]] and scheme.end[seq[-1]]
            and all(scheme.allowed[a, b] for a, b in zip(seq, seq[1:])))


def decode_one(log_probs, scheme, force_outside=None):
    """decode_batch of one doc."""
    return decode_batch([log_probs], scheme, None if force_outside is None else [force_outside])[0]


@pytest.mark.parametrize("name", ["BILUO", "BIO"])
def test_viterbi_and_confidences_equal_brute_force(name):
    scheme = TagScheme(["A", "B"], name)
    rng = numpy.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 5))
        lp = numpy.log(rng.dirichlet(numpy.ones(len(scheme.tags)), size=n))
        seqs = [s for s in itertools.product(range(len(scheme.tags)), repeat=n) if _valid(scheme, s)]
        weights = numpy.array([numpy.exp(sum(lp[t, q] for t, q in enumerate(s))) for s in seqs])
        entities = decode_one(lp, scheme)
        best = seqs[int(weights.argmax())]
        assert [e[:3] for e in entities] == tags_to_spans([scheme.tags[q] for q in best])
        for start, end, label, confidence in entities:
            exact = sum(w for w, s in zip(weights, seqs)
                        if (start, end, label) in tags_to_spans([scheme.tags[q] for q in s])) / weights.sum()
            assert confidence == pytest.approx(exact, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    scheme_name=st.sampled_from(["BILUO", "BIO"]),
    logits=arrays(numpy.float64, st.tuples(st.integers(0, 40), st.just(9)),
                  elements=st.floats(-50, 50, allow_nan=False)),
)
def test_random_logits_give_valid_spans_and_confidences(scheme_name, logits):
    scheme = TagScheme(["PER", "LOC", "ORG", "MISC"][: (4 if scheme_name == "BILUO" else 4)], scheme_name)
    n_tags = len(scheme.tags)
    logits = numpy.resize(logits, (logits.shape[0], n_tags)) if logits.size else numpy.zeros((0, n_tags))
    log_probs = logits - numpy.log(numpy.exp(logits - logits.max(axis=1, keepdims=True)).sum(1, keepdims=True)) - logits.max(axis=1, keepdims=True) if logits.size else logits
    entities = decode_one(log_probs, scheme)
    previous_end = 0
    for start, end, label, confidence in entities:
        assert 0 <= start < end <= logits.shape[0]
        assert start >= previous_end  # no overlaps, in order
        assert label in scheme.labels
        assert 0.0 <= confidence <= 1.0
        previous_end = end


def test_forced_outside_tokens_are_never_in_an_entity():
    scheme = TagScheme(["X"], "BILUO")
    log_probs = numpy.log(numpy.full((5, len(scheme.tags)), 1e-6))
    log_probs[:, scheme.index["I-X"]] = 0.0  # the model wants one long entity
    outside = numpy.array([False, False, True, False, False])
    for start, end, _, _ in decode_one(log_probs, scheme, force_outside=outside):
        assert not (start <= 2 < end)


def test_gold_tags_in_bio_scheme():
    scheme = TagScheme(["X"], "BIO")
    ids = scheme.tag_ids(["U-X", "B-X", "I-X", "L-X", "O", "-", None])
    assert [scheme.tags[i] if i >= 0 else None for i in ids] == ["B-X", "B-X", "I-X", "I-X", "O", None, None]


@pytest.mark.parametrize("scheme_name", ["BILUO", "BIO"])
def test_batched_decoding_equals_one_doc_at_a_time(scheme_name):
    scheme = TagScheme(["PER", "LOC", "ORG"], scheme_name)
    rng = numpy.random.default_rng(0)
    lengths = [0, 1, 2, 5, 9, 9, 17, 40, 3, 120, 1, 33]
    log_probs = [rng.normal(0, 3, (n, len(scheme.tags))) for n in lengths]
    log_probs = [lp - numpy.log(numpy.exp(lp).sum(1, keepdims=True)) for lp in log_probs]
    outside = [rng.random(n) < 0.1 for n in lengths]
    batched = decode_batch(log_probs, scheme, outside, group_size=4)
    for lp, force, got in zip(log_probs, outside, batched):
        expected = decode_one(lp, scheme, force)
        assert [e[:3] for e in got] == [e[:3] for e in expected]
        assert numpy.allclose([e[3] for e in got], [e[3] for e in expected], atol=1e-9)


def test_confidences_where_probabilities_underflow():
    """A sequence forced through tags of probability exp(-1000): the scaled recursions
    underflow, and the log-space ones give the exact confidences (brute force in log space)."""
    from spacy_bert_cls.decoding import _scaled_forward_backward

    scheme = TagScheme(["X"], "BILUO")
    tags = len(scheme.tags)
    lp = numpy.full((3, tags), -1003.0)
    lp[0, scheme.index["B-X"]] = 0.0  # the model is sure of B-X, then of O: no valid sequence is likely
    lp[1:, scheme.index["O"]] = 0.0
    lp[1, scheme.index["L-X"]] = -1000.0  # the best of them: B-X L-X O
    assert _scaled_forward_backward(lp[None], numpy.array([3]), scheme) is None
    seqs = [s for s in itertools.product(range(tags), repeat=3) if _valid(scheme, s)]
    log_w = numpy.array([sum(lp[t, q] for t, q in enumerate(s)) for s in seqs])
    entities = decode_one(lp, scheme)
    assert entities and [e[:3] for e in entities] == tags_to_spans([scheme.tags[q] for q in seqs[int(log_w.argmax())]])
    for start, end, label, confidence in entities:
        inside = [w for w, s in zip(log_w, seqs) if (start, end, label) in tags_to_spans([scheme.tags[q] for q in s])]
        assert confidence == pytest.approx(numpy.exp(numpy.logaddexp.reduce(inside) - numpy.logaddexp.reduce(log_w)), abs=1e-9)


@pytest.mark.parametrize("scheme_name", ["BILUO", "BIO"])
def test_scaled_recursions_equal_the_log_space_ones(scheme_name):
    from spacy_bert_cls.decoding import _log_forward_backward, _scaled_forward_backward

    scheme = TagScheme(["PER", "LOC"], scheme_name)
    rng = numpy.random.default_rng(1)
    n = numpy.array([7, 1, 4, 7])
    lp = numpy.full((len(n), 7, len(scheme.tags)), -numpy.inf)
    for b, m in enumerate(n):
        logits = rng.normal(0, 8, (m, len(scheme.tags)))
        lp[b, :m] = logits - numpy.logaddexp.reduce(logits, axis=1, keepdims=True)
    live = numpy.arange(7)[None, :, None] < n[:, None, None]
    for scaled, exact in zip(_scaled_forward_backward(lp, n, scheme), _log_forward_backward(lp, n, scheme)):
        read = numpy.broadcast_to(live, exact.shape)  # past a doc's end: unread
        finite = read & numpy.isfinite(exact)
        assert (numpy.isfinite(scaled)[read] == finite[read]).all()
        assert numpy.allclose(scaled[finite], exact[finite], atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(scheme_name=st.sampled_from(["BILUO", "BIO"]),
       rows=st.lists(st.lists(st.integers(0, 8), max_size=12), min_size=1, max_size=5))
def test_path_spans_equal_tags_to_spans(scheme_name, rows):
    """The spans read off tag-id arrays are tags_to_spans' of the tag strings, for any tag
    sequence (valid or not), with padding past each row's length never read."""
    scheme = TagScheme(["A", "B"] if scheme_name == "BILUO" else ["A", "B", "C", "D"], scheme_name)
    assert len(scheme.tags) == 9
    n = numpy.array([len(r) for r in rows])
    paths = numpy.full((len(rows), max(1, n.max())), 3)  # padding: an entity tag, never read
    for b, r in enumerate(rows):
        paths[b, :len(r)] = r
    assert path_spans(paths, n, scheme) == [tags_to_spans([scheme.tags[i] for i in r]) for r in rows]


@pytest.mark.parametrize("scheme_name", ["BILUO", "BIO"])
def test_viterbi_runs_only_where_the_best_tags_are_invalid(scheme_name):
    """Where every token's most probable tag already makes a valid sequence, decoding keeps
    it without Viterbi; either way the spans are those of Viterbi over every doc."""
    from spacy_bert_cls.decoding import _valid_paths, _viterbi

    scheme = TagScheme(["PER", "LOC", "ORG"], scheme_name)
    rng = numpy.random.default_rng(2)
    n = rng.integers(1, 30, size=200)
    lp = numpy.full((len(n), int(n.max()), len(scheme.tags)), -numpy.inf)
    for b, m in enumerate(n):
        logits = rng.normal(0, 1, (m, len(scheme.tags)))
        logits[:, 0] += rng.uniform(0, 6)  # O most probable, more or less: valid and invalid best tags
        lp[b, :m] = logits - numpy.logaddexp.reduce(logits, axis=1, keepdims=True)
    best = lp.argmax(axis=2)
    valid = _valid_paths(best, n, scheme)
    assert 20 < valid.sum() < len(n) - 20
    full = _viterbi(lp, n, scheme)
    for b in numpy.flatnonzero(valid):
        assert (full[b, :n[b]] == best[b, :n[b]]).all()
    decoded = decode_batch([lp[b, :m] for b, m in enumerate(n)], scheme)
    assert [[e[:3] for e in doc] for doc in decoded] == path_spans(full, n, scheme)
