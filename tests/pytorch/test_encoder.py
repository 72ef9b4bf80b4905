"""The torch encoder: parity with transformers.BertModel, masking, devices, precision."""
import pytest
import torch

from spacy_bert_cls.checkpoint import load_bert_checkpoint
from spacy_bert_cls.pytorch import BertConfig, BertModel

from ..conftest import real_sentences

TINY = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=32)


def _minilm(minilm_dir):
    config, state, _ = load_bert_checkpoint(minilm_dir)
    model = BertModel(config)
    model.load_state_dict(state)
    return model.eval()


def test_parity_with_transformers_on_padded_batch(minilm_dir, datasets_dir):
    transformers = pytest.importorskip("transformers")
    texts = real_sentences(datasets_dir, 40)[::5]  # 8 sentences, varied lengths
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    lengths = batch["attention_mask"].sum(1)
    assert int(lengths.min()) < int(lengths.max()), "the batch must be padded"
    hf = transformers.BertModel.from_pretrained(str(minilm_dir), attn_implementation="sdpa").eval()
    ours = _minilm(minilm_dir)
    with torch.no_grad():
        expected = hf(**batch)
        hidden = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        pooled = ours.pool(hidden)
    real = batch["attention_mask"].bool()
    assert (hidden[real] - expected.last_hidden_state[real]).abs().max() < 1e-5
    assert (pooled - expected.pooler_output).abs().max() < 1e-5


def test_padding_does_not_change_real_positions():
    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    ids = torch.randint(5, 50, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 7 + [0] * 5])
    with torch.no_grad():
        alone = model(ids)
        batched = model(padded, mask)
    assert torch.allclose(alone, batched[:, :7], atol=1e-5)


def test_dropout_only_in_training_and_gradients_flow():
    torch.manual_seed(0)
    model = BertModel(TINY)
    ids = torch.randint(5, 50, (2, 6))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids), model(ids))
    model.train()
    out = model(ids)
    assert not torch.equal(out, model(ids))
    out.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("pooler"))


def test_too_long_sequence_is_an_error():
    model = BertModel(TINY)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_bf16_autocast_on_cpu_stays_close():
    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    ids = torch.randint(5, 50, (2, 9))
    with torch.no_grad():
        full = model(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(ids).float()
    cosine = torch.nn.functional.cosine_similarity(full.flatten(), low.flatten(), dim=0)
    assert cosine > 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_autocast_matches_fp32():
    torch.manual_seed(0)
    model = BertModel(TINY).eval().cuda()
    ids = torch.randint(5, 50, (2, 9), device="cuda")
    with torch.no_grad():
        full = model(ids)
        with torch.autocast("cuda", dtype=torch.float16):
            low = model(ids).float()
    assert torch.nn.functional.cosine_similarity(full.flatten(), low.flatten(), dim=0) > 0.99


@pytest.mark.parametrize(
    "field,value",
    [("hidden_size", 30), ("hidden_act", "tanhh"), ("num_hidden_layers", 0),
     ("hidden_dropout_prob", 1.5), ("vocab_size", "100"), ("hidden_size", True)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        BertConfig(**{**TINY.to_dict(), field: value})


def test_a_bucket_of_padding_only_gives_no_rows():
    """Packed execution of a bucket with no real piece: an empty result, not an error."""
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32)).eval()
    ids = torch.ones(2, 3, dtype=torch.long)
    hidden, layout = bert.forward_packed([(ids, torch.zeros(2, 3, dtype=torch.bool))])
    assert hidden.shape == (0, 16) and layout.n_rows == 0


LAYOUTS = {
    "three buckets": ((2, 4, None), (3, 6, [6, 2, 5]), (2, 9, [3, 9])),  # one without padding
    "one bucket": ((3, 7, [7, 4, 1]),),
}


def _buckets(layout, seed=0):
    """Buckets of windows: (rows, seq, real lengths or None for no padding) each."""
    g = torch.Generator().manual_seed(seed)
    buckets = []
    for rows, seq, lengths in LAYOUTS[layout]:
        ids = torch.randint(5, 50, (rows, seq), generator=g)
        mask = None if lengths is None else torch.arange(seq)[None, :] < torch.tensor(lengths)[:, None]
        buckets.append((ids, mask))
    return buckets


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("grad", [False, True])
def test_packed_buckets_give_the_padded_states_and_gradients(grad, layout):
    """forward_packed (one matrix of real pieces, attention per bucket) against forward on
    each bucket: the same states, and with autograd the same weight gradients (the piece
    embeddings' sparse one included)."""
    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    buckets = _buckets(layout)
    weights = torch.randn(sum(int(m.sum()) if m is not None else ids.numel() for ids, m in buckets), 32,
                          generator=torch.Generator().manual_seed(1))
    with torch.set_grad_enabled(grad):
        packed, _ = model.forward_packed(buckets, sparse_grad=grad)
        padded = torch.cat([model(ids, mask)[mask if mask is not None else torch.ones_like(ids, dtype=torch.bool)]
                            for ids, mask in buckets])
    torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-5)
    if not grad:
        return
    (packed * weights).sum().backward()
    from_packed = {n: p.grad.to_dense() if p.grad.is_sparse else p.grad.clone() for n, p in model.named_parameters()
                   if p.grad is not None}
    assert model.embeddings.piece_embeddings.weight.grad.is_sparse
    model.zero_grad(set_to_none=True)
    (padded * weights).sum().backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(from_packed[name], p.grad, rtol=1e-4, atol=1e-5, msg=name)
    assert set(from_packed) == {n for n, p in model.named_parameters() if p.grad is not None}


def test_prediction_under_bf16_autocast_keeps_the_sums_in_fp32():
    """Prediction's in-place sums (no autograd) give what the same eval pass with autograd
    gives, dtype included, where autocast makes the sublayers' outputs bf16."""
    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    buckets = _buckets("three buckets")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            predicted, _ = model.forward_packed(buckets)
        reference, _ = model.forward_packed(buckets)
    assert predicted.dtype == reference.dtype == torch.float32
    assert torch.equal(predicted, reference.detach())


@pytest.mark.parametrize("capability,expected", [
    ("AVX512", {5: 5, 7: 7, 8: 16, 15: 16, 16: 16, 23: 23, 24: 32, 47: 48}),
    ("AVX2", {3: 3, 4: 8, 7: 8, 8: 8, 11: 11, 12: 16, 23: 24}),
    ("DEFAULT", {7: 7, 23: 23, 47: 47}),
])
def test_attention_length_pads_to_the_vector_width_from_half_a_width(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    attention = BertModel(TINY).eval().layers[0].attention
    assert {seq: attention.attention_length(seq, torch.device("cpu")) for seq in expected} == expected
    assert attention.attention_length(47, torch.device("cuda")) == 47  # not the CPU's kernel
    attention.train()  # the CPU's math path with dropout pays for padding: kept
    assert attention.attention_length(47, torch.device("cpu")) == 47


@pytest.mark.parametrize("grad", [False, True])
def test_longer_attention_lengths_change_no_state(monkeypatch, grad):
    """Windows padded further for attention (masked keys, dropped queries) give the states
    and gradients of their own lengths, whatever the CPU's vector width."""
    from spacy_bert_cls.pytorch.attention import SelfAttention

    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    buckets = _buckets("three buckets")
    results = []
    for extra in (0, 5, 13):
        monkeypatch.setattr(SelfAttention, "attention_length", lambda self, seq, device, extra=extra: seq + extra)
        model.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(grad):
            states, layout = model.forward_packed(buckets)
            assert [g.seq for g in layout.groups] == [seq + extra for seq in (4, 6, 9)]
            if grad:
                states.square().sum().backward()
        results.append((states.detach(), [p.grad.to_dense().clone() if p.grad is not None and p.grad.is_sparse
                                          else (p.grad.clone() if p.grad is not None else None)
                                          for p in model.parameters()]))
    for states, grads in results[1:]:
        torch.testing.assert_close(states, results[0][0], rtol=1e-5, atol=1e-5)
        for got, want in zip(grads, results[0][1]):
            assert (got is None) == (want is None)
            if got is not None:  # sums in another order: 1.3e-5 apart seen on an AMD EPYC
                torch.testing.assert_close(got, want, rtol=1e-4, atol=5e-5)


def test_bucket_rows_are_few_and_waste_little():
    """oneDNN keeps a primitive per row count it sees: the counts up to 8,192 rows are 56,
    each at least the rows asked and at most 12.5% (or 15 rows) more."""
    from spacy_bert_cls.pytorch.packing import bucket_rows

    counts = {bucket_rows(n) for n in range(1, 8193)}
    assert len(counts) == 56 and max(counts) == 8192 and bucket_rows(0) == 0
    for n in range(1, 8193):
        assert n <= bucket_rows(n) <= max(n + 15, n * 1.125)
        assert bucket_rows(bucket_rows(n)) == bucket_rows(n)


@pytest.mark.parametrize("layout", sorted(LAYOUTS) + ["no padding"])
def test_row_buckets_change_no_state_and_bound_the_row_counts(layout):
    """With row_buckets (the copies on oneDNN's kernels) prediction pads the packed rows to
    bucket_rows' counts: every linear layer sees such a count, the real rows' states are
    those without it, and training never pads."""
    from spacy_bert_cls.pytorch.packing import bucket_rows

    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    buckets = _buckets(layout) if layout in LAYOUTS else [(torch.randint(5, 50, (3, 5)), None)]
    with torch.no_grad():
        reference, _ = model.forward_packed(buckets)
    rows_seen = []
    hooks = [m.register_forward_pre_hook(lambda m, args: rows_seen.append(args[0].shape[0]))
             for m in model.modules() if isinstance(m, torch.nn.Linear)]
    model.row_buckets = True
    with torch.no_grad():
        states, layout_ = model.forward_packed(buckets)
    n_real = reference.shape[0]
    assert states.shape == reference.shape and layout_.n_rows == n_real
    torch.testing.assert_close(states, reference, rtol=1e-5, atol=1e-5)
    assert set(rows_seen) == {bucket_rows(n_real)} and bucket_rows(n_real) > n_real
    rows_seen.clear()
    model.forward_packed(buckets)[0].sum().backward()  # with autograd: unpadded
    assert set(rows_seen) == {n_real}
    for hook in hooks:
        hook.remove()


def test_prediction_under_bf16_autocast_pads_rows_as_on_onednn(monkeypatch):
    """The CPU's bf16 products are oneDNN's: prediction under autocast pads the packed rows
    and gives the states without padding; training does not pad."""
    from spacy_bert_cls.pytorch import encoder as encoder_module
    from spacy_bert_cls.pytorch.packing import bucket_rows

    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    buckets = _buckets("three buckets")
    rows_seen = []
    hooks = [m.register_forward_pre_hook(lambda m, args: rows_seen.append(args[0].shape[0]))
             for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            padded, _ = model.forward_packed(buckets)
            padded_rows = set(rows_seen)
            rows_seen.clear()
            monkeypatch.setattr(encoder_module, "bucket_rows", lambda n: n)
            plain, _ = model.forward_packed(buckets)
            monkeypatch.undo()
        rows_seen.clear()
        model.forward_packed(buckets)
    for hook in hooks:
        hook.remove()
    n_real = plain.shape[0]
    assert padded_rows == {bucket_rows(n_real)} and bucket_rows(n_real) > n_real and set(rows_seen) == {n_real}
    torch.testing.assert_close(padded, plain, rtol=1e-2, atol=1e-3)  # equal here; bf16 kernels may differ by rows
