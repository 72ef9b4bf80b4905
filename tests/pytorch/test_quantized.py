"""int8 and bf16 inference, and the fp32 matmul backend: outputs agree with fp32 within stated
tolerances, and quantized pipelines save, load and package like any other."""
import copy
import subprocess
import sys

import pytest
import spacy
import torch
import torch.nn.functional as F
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_bert_cls.models.encoder import get_bert_shim
from spacy_bert_cls.pytorch import BertConfig, BertModel
from spacy_bert_cls.pytorch import quantized
from spacy_bert_cls.pytorch.quantized import (Int8Linear, OneDNNLinear, activation_ranges, calibrate_int8,
                                              fidelity, quantizable_layers, quantize_bert)
from spacy_bert_cls.quantize import quantize_pipeline

from ..conftest import TINY_SIZES

pytestmark = pytest.mark.skipif(not quantized.int8_supported(), reason="this torch has no quantized engine")

# Tolerances: int8 (7-bit weights per channel, 8-bit dynamic activations) keeps a linear
# layer's output within 2% of its scale (3% with a 30x outlier channel, once smoothed); a
# whole tiny encoder keeps a token cosine above 0.99 to fp32.
INT8_LAYER_TOLERANCE = 0.02
INT8_OUTLIER_TOLERANCE = 0.03
INT8_MODEL_COSINE = 0.99
BF16_MODEL_COSINE = 0.999


def _batches(vocab_size, seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = torch.randint(5, vocab_size, (8, 12 + 4 * i), generator=g)
        mask = torch.ones_like(ids, dtype=torch.bool)
        mask[::2, -3:] = False
        out.append((ids, mask))
    return out


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=120, **TINY_SIZES)).eval()
    return model


def test_int8_linear_is_close_to_fp32_and_smoothing_tames_outliers():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    with torch.no_grad():
        x = torch.randn(100, 64)
        expected = F.linear(x, linear.weight, linear.bias)
        assert float((Int8Linear(linear)(x) - expected).abs().max()) < INT8_LAYER_TOLERANCE * float(expected.abs().max())
        x[:, 3] *= 30  # an outlier channel, as BERT's activations have
        expected = F.linear(x, linear.weight, linear.bias)
        plain = Int8Linear(linear)(x)
        scales = quantized.smoothing_scales(linear, x.abs().amax(0), 0.5)
        smooth = Int8Linear(linear, scales)(x / scales)  # the input divided, the weights multiplied
    assert float((smooth - expected).abs().max()) < INT8_OUTLIER_TOLERANCE * float(expected.abs().max())
    # Smoothing moves the outlier into the weights: the error drops.
    assert float((smooth - expected).abs().mean()) < 0.6 * float((plain - expected).abs().mean())


def test_each_row_is_quantized_on_its_own_so_a_batch_changes_nothing():
    """Per tensor, the engine's range came from every row of the call: a text's output
    changed with the other texts of its batch (an int8 pipeline's nlp(text) and nlp.pipe
    disagreed on entities)."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    layer = Int8Linear(linear)
    with torch.no_grad():
        x = torch.randn(20, 64)
        loud = torch.cat([x, 50 * torch.randn(3, 64)])  # rows with a far larger range
        alone = torch.cat([layer(x[i:i + 1]) for i in range(20)])
        assert torch.equal(layer(x), alone) and torch.equal(layer(loud)[:20], alone)
        assert torch.equal(layer(torch.zeros(2, 64)), linear.bias.detach().expand(2, -1))


def test_both_int8_engines_give_the_same_numbers(monkeypatch):
    """Which engine a layer runs on is timed per process: the two must give the same numbers,
    or a pipeline would predict otherwise from one process to the next."""
    if "onednn" not in torch.backends.quantized.supported_engines:
        pytest.skip("this torch has no oneDNN int8 engine")
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(30, 64)
    x[:, 3] *= 30
    outputs = []
    for engine in (torch.backends.quantized.engine, "onednn"):
        monkeypatch.setitem(quantized._BACKENDS, ("int8", 64, 48), engine)
        layer = Int8Linear(linear)
        assert layer.engine == engine
        with torch.no_grad():
            outputs.append(layer(x))
    assert float((outputs[0] - outputs[1]).abs().max()) < 1e-5 * float(outputs[0].abs().max())


def test_no_int16_saturation_with_full_range_activations():
    # u8 x s8 pairs summed in int16 saturate with 8-bit weights; ours are 7-bit.
    linear = torch.nn.Linear(8, 4)
    with torch.no_grad():
        linear.weight.fill_(1.0)
        linear.bias.zero_()
        x = torch.full((2, 8), 5.0)
        x[0, 0] = -5.0  # activations span the whole range: zero point mid-way
        # Saturated, 8-bit weights give 0.2 and 0.3 here instead of 30 and 40.
        assert torch.allclose(Int8Linear(linear)(x), F.linear(x, linear.weight, linear.bias), atol=0.5)


def test_quantized_encoder_shares_tensors_and_keeps_fidelity(bert):
    batches = _batches(120)
    ranges = activation_ranges(bert, batches)
    assert set(ranges) == set(quantizable_layers(bert))
    q = quantize_bert(bert, ranges, alpha=0.8)
    # The embeddings are the fp32 model's own tensors, not copies.
    assert q.embeddings.piece_embeddings.weight.data_ptr() == bert.embeddings.piece_embeddings.weight.data_ptr()
    assert all(isinstance(q.get_submodule(n), Int8Linear) for n in quantizable_layers(bert))
    assert isinstance(bert.get_submodule(quantizable_layers(bert)[0]), torch.nn.Linear)  # the original is untouched
    assert fidelity(bert, q, batches)["mean_cosine"] > INT8_MODEL_COSINE


class _DividingInput(torch.nn.Module):
    """An Int8Linear that divides its own input by the smoothing scales, on every call (what
    quantize_bert folds into the layers before)."""

    def __init__(self, linear, scales):
        super().__init__()
        self.int8, self.scales = Int8Linear(linear, scales), scales

    def forward(self, x):
        return self.int8(x / self.scales)


@pytest.mark.parametrize("fp32_layers", [(), ("layers.0.attention.qkv", "layers.1.ffn.intermediate"),
                                         ("layers.0.attention.output", "layers.1.ffn.output")])
def test_smoothing_folded_into_layer_norms_and_values_changes_nothing(bert, fp32_layers):
    """quantize_bert divides the inputs of qkv, attention output and intermediate inside the
    LayerNorms and value rows before them: the same states as each int8 layer dividing its
    own input per call, up to float rounding (which may move an activation by one int8 step)."""
    bert = copy.deepcopy(bert)
    with torch.no_grad():  # outlier channels (as BERT's), for scales far from 1 where they are
        width = bert.config.hidden_size
        for module in bert.modules():  # biases as trained ones are, not init's zeros
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.Linear)):
                module.bias.normal_(0, 0.3)
        bert.embeddings.layer_norm.weight[3] *= 20
        for layer in bert.layers:
            layer.attention_norm.weight[5] *= 20
            layer.ffn_norm.weight[9] *= 20
            layer.attention.qkv.weight[2 * width + 7] *= 20  # a value channel: the attention output's input
    batches = _batches(120)
    ranges = activation_ranges(bert, batches)
    scales = [quantized.smoothing_scales(bert.get_submodule(n), ranges[n], 0.8) for n in quantizable_layers(bert)]
    assert all(float(s.max() / s.min()) > 5 for s in scales), [float(s.max() / s.min()) for s in scales]
    per_call = quantized._shallow_copy(bert)
    for name in quantizable_layers(bert):
        if name not in fp32_layers:
            linear = bert.get_submodule(name)
            quantized._replace(per_call, name, _DividingInput(linear, quantized.smoothing_scales(linear, ranges[name], 0.8)))
    folded = quantize_bert(bert, ranges, alpha=0.8, fp32_layers=fp32_layers)
    int8 = [n for n in quantizable_layers(bert) if isinstance(folded.get_submodule(n), Int8Linear)]
    assert int8 == [n for n in quantizable_layers(bert) if n not in fp32_layers]
    with torch.no_grad():
        for ids, mask in batches:
            a, b = per_call(ids, mask), folded(ids, mask)
            assert F.cosine_similarity(a[mask], b[mask], dim=-1).min() > 0.999
            assert float((a - b)[mask].abs().max()) < 0.02 * float(a[mask].abs().max())
        layout_states, _ = folded.forward_packed([(ids, mask) for ids, mask in batches[:2]])
        expected = torch.cat([per_call(ids, mask)[mask] for ids, mask in batches[:2]])
        assert F.cosine_similarity(layout_states, expected, dim=-1).min() > 0.999


def test_calibration_keeps_the_most_sensitive_layers_in_fp32(bert):
    batches = _batches(120)
    result = calibrate_int8(bert, batches, target_cosine=2.0, max_fp32_fraction=0.25)  # an unreachable target
    layers = quantizable_layers(bert)
    assert len(result["fp32_layers"]) == int(0.25 * len(layers))
    assert set(result["fp32_layers"]) <= set(layers)
    easy = calibrate_int8(bert, batches, target_cosine=0.5)
    assert easy["fp32_layers"] == [] and easy["mean_cosine"] > INT8_MODEL_COSINE


def test_onednn_fp32_path_gives_the_same_results():
    if not quantized.onednn_available():
        pytest.skip("this torch has no oneDNN linear")
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 96)
    x = torch.randn(50, 32)
    assert torch.allclose(OneDNNLinear(linear, 64)(x), F.linear(x, linear.weight, linear.bias), atol=1e-5, rtol=1e-5)
    assert quantized.fp32_backend(linear) in ("mkl", "onednn")


def test_int8_engines_give_the_same_results_and_leave_the_setting_alone():
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 96)
    x = torch.randn(50, 32)
    default = torch.backends.quantized.engine
    assert quantized.int8_engine(linear) in (default, "onednn")
    engines = [e for e in (default, "onednn") if e in torch.backends.quantized.supported_engines]
    weight = linear.weight.detach()
    qweight = torch.quantize_per_channel(weight, (weight.abs().amax(1) / 63).double(),
                                         torch.zeros(96, dtype=torch.long), 0, torch.qint8)
    outputs = [torch.ops.quantized.linear_dynamic(x, quantized._prepack(qweight, linear.bias, e), False)
               for e in engines]
    assert torch.backends.quantized.engine == default
    expected = F.linear(x, linear.weight, linear.bias).detach()
    for y in outputs:
        assert float((y - expected).abs().max()) < INT8_LAYER_TOLERANCE * float(expected.abs().max())


# ------------------------------------------------------------------ pipelines

TRAIN = [
    ("i love this movie", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": []}),
    ("john visited paris today", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(0, 4, "PER"), (13, 18, "LOC")]}),
    ("awful film from acme corp", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(16, 25, "ORG")]}),
    ("mary hates london", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(0, 4, "PER"), (11, 17, "LOC")]}),
]
TEXTS = [t for t, _ in TRAIN] + ["", "new york city said no", " ".join(["john visited paris and"] * 30)]


def _predict(nlp):
    return [(d.cats, [(e.start_char, e.end_char, e.label_) for e in d.ents]) for d in nlp.pipe(TEXTS)]


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tiny_model_config, tmp_path_factory):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1", **tiny_model_config}})
    width = tiny_model_config["hidden_size"]
    nlp.add_pipe("bert_textcat", config={"model": {"tok2vec": {"width": width}}})
    nlp.add_pipe("bert_ner", config={"model": {"tok2vec": {"width": width}}})
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(3e-3))
    for _ in range(30):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    folder = tmp_path_factory.mktemp("quantized") / "fp32"
    nlp.to_disk(folder)
    data = folder.parent / "calibration.txt"
    data.write_text("\n".join(TEXTS[:5] * 4) + "\n")
    return folder, data


def _close(a, b, cats_tol):
    for (cats_a, ents_a), (cats_b, ents_b) in zip(a, b):
        assert cats_a.keys() == cats_b.keys()
        assert max(abs(cats_a[k] - cats_b[k]) for k in cats_a) <= cats_tol, (cats_a, cats_b)


@pytest.mark.parametrize("dtype,cats_tol", [("int8", 0.05), ("bfloat16", 0.02)])
def test_quantized_pipeline_agrees_with_fp32_and_round_trips(trained, tmp_path, dtype, cats_tol):
    folder, data = trained
    reference = _predict(spacy.load(folder))
    summary = quantize_pipeline(folder, tmp_path / dtype, dtype=dtype, data=data)
    assert summary["dtype"] == dtype
    loaded = spacy.load(tmp_path / dtype)
    assert loaded.get_pipe("bert").inference_dtype == dtype
    assert loaded.meta["spacy_bert_cls"]["inference"]["dtype"] == dtype
    predicted = _predict(loaded)
    _close(reference, predicted, cats_tol)
    # Saving and loading again, and to_bytes/from_bytes, give exactly the same predictions.
    loaded.to_disk(tmp_path / "again")
    assert _predict(spacy.load(tmp_path / "again")) == predicted
    copy = spacy.load(folder)
    copy.get_pipe("bert").inference_dtype = dtype
    copy.from_bytes(loaded.to_bytes())
    assert _predict(copy) == predicted
    if dtype == "int8":
        windowed = get_bert_shim(loaded.get_pipe("bert").model).windowed
        assert windowed.int8_ranges() and set(windowed.int8_settings) == {"alpha", "fp32_layers"}


def test_int8_of_a_mixed_precision_pipeline_predicts_as_without_it(trained, tmp_path):
    """mixed_precision (bf16 autocast on the CPU) is a training setting; the int8 copy runs in its
    own precision (autocast handed its layers bf16 activations, and prediction failed)."""
    folder, data = trained
    quantize_pipeline(folder, tmp_path / "int8", dtype="int8", data=data)
    plain = spacy.load(tmp_path / "int8")
    mixed = spacy.load(tmp_path / "int8")
    get_bert_shim(mixed.get_pipe("bert").model).windowed.mixed_precision = True
    assert _predict(mixed) == _predict(plain)


def test_int8_without_calibration_and_back_to_fp32(trained, tmp_path):
    folder, _ = trained
    reference = _predict(spacy.load(folder))
    quantize_pipeline(folder, tmp_path / "int8", dtype="int8")  # no data: from the weights alone
    _close(reference, _predict(spacy.load(tmp_path / "int8")), 0.05)
    quantize_pipeline(tmp_path / "int8", tmp_path / "fp32", dtype="float32")
    back = _predict(spacy.load(tmp_path / "fp32"))
    _close(reference, back, 1e-6)


def test_int8_setting_in_the_config_and_training_stays_fp32(trained, caplog):
    folder, _ = trained
    nlp = spacy.load(folder, config={"components": {"bert": {"inference_dtype": "int8"}}})
    assert nlp.get_pipe("bert").inference_dtype == "int8"
    before = _predict(nlp)
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in TRAIN]
    weights = {k: v.clone() for k, v in get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.state_dict().items()}
    optimizer = nlp.resume_training()
    # Language.update calls bert's finish_update before the listeners backpropagate, so its
    # gradients land at the next update (spacy train calls finish_update after all of them).
    with caplog.at_level("WARNING", logger="spacy_bert_cls"):
        for _ in range(2):
            nlp.update(examples, sgd=optimizer, drop=0.0)
    # said once: the calibration is the old weights', and dev scores in training are int8's
    assert caplog.text.count("training an encoder set to int8 inference") == 1
    after_state = get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.state_dict()
    assert any(not torch.equal(weights[k], after_state[k]) for k in weights)  # fp32 weights trained
    assert _predict(nlp) != before  # and the int8 layers follow them


def test_quantized_pipeline_packages(trained, tmp_path):
    folder, data = trained
    quantize_pipeline(folder, tmp_path / "int8", dtype="int8", data=data)
    expected = _predict(spacy.load(tmp_path / "int8"))
    (tmp_path / "packages").mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "int8"), str(tmp_path / "packages"),
                    "--name", "int8_test", "--version", "0.0.1", "--force"], check=True, capture_output=True)
    package = tmp_path / "packages" / "en_int8_test-0.0.1"
    requirements = (package / "meta.json").read_text()
    assert "spacy_bert_cls" in requirements
    inner = package / "en_int8_test" / "en_int8_test-0.0.1"
    assert _predict(spacy.load(inner)) == expected
    assert spacy.load(inner).get_pipe("bert").inference_dtype == "int8"


def test_bad_dtype_and_missing_data_are_clear_errors(trained, tmp_path):
    folder, _ = trained
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize_pipeline(folder, tmp_path / "x", dtype="int4")
    with pytest.raises(ValueError, match="no such file"):
        quantize_pipeline(folder, tmp_path / "x", dtype="int8", data=tmp_path / "missing.jsonl")
    assert not (tmp_path / "x").exists()
    nlp = spacy.load(folder)
    with pytest.raises(ValueError, match="inference dtype must be one of"):
        nlp.get_pipe("bert").inference_dtype = "float16"


def test_quantize_says_at_once_what_int8_lacks(trained, tmp_path):
    """Without --data the "without calibration" warning came only at first use, and a
    calibration that stopped under --target-cosine passed without a word: both are said
    by the quantize command itself, with the figures."""
    from typer.testing import CliRunner

    from spacy_bert_cls.cli import app

    folder, data = trained
    result = CliRunner().invoke(app, ["quantize", str(folder), str(tmp_path / "plain"), "--dtype", "int8"])
    assert result.exit_code == 0, result.output
    assert "without calibration" in result.output and "--data" in result.output
    unreachable = CliRunner().invoke(app, ["quantize", str(folder), str(tmp_path / "strict"), "--dtype", "int8",
                                           "--data", str(data), "--target-cosine", "1.0"])
    assert unreachable.exit_code == 0, unreachable.output
    summary = spacy.load(tmp_path / "strict").meta["spacy_bert_cls"]["inference"]
    assert summary["mean_cosine"] < 1.0
    text = " ".join(unreachable.output.split())
    assert "under the target of 1.0" in text and f"{summary['mean_cosine']:.4f}" in text, unreachable.output
    assert f"{len(summary['fp32_layers'])} of " in text
    reachable = quantize_pipeline(folder, None, dtype="int8", data=data, target_cosine=0.5)
    assert reachable["warnings"] == []


def test_copies_on_onednn_kernels_pad_their_rows(bert, monkeypatch):
    """The fp32 and int8 copies whose layers run oneDNN's kernels pad the packed rows
    (BertModel.row_buckets: oneDNN keeps a primitive per row count); bert itself does not,
    and neither does a copy on the default kernels."""
    if not quantized.onednn_available() or "onednn" not in torch.backends.quantized.supported_engines:
        pytest.skip("this torch has no oneDNN linear")
    for name in quantizable_layers(bert):
        linear = bert.get_submodule(name)
        for kind, default in (("fp32", "mkl"), ("int8", torch.backends.quantized.engine)):
            monkeypatch.setitem(quantized._BACKENDS, (kind, linear.in_features, linear.out_features), default)
    assert quantized.fast_fp32_bert(bert) is None and not quantize_bert(bert, None).row_buckets
    for name in quantizable_layers(bert):
        linear = bert.get_submodule(name)
        for kind in ("fp32", "int8"):
            monkeypatch.setitem(quantized._BACKENDS, (kind, linear.in_features, linear.out_features), "onednn")
    fast, int8 = quantized.fast_fp32_bert(bert), quantize_bert(bert, None)
    assert fast.row_buckets and int8.row_buckets and not bert.row_buckets
    buckets = [(ids, mask) for ids, mask in _batches(120)]  # piece ids from 5: no [PAD]
    spiky = copy.deepcopy(bert)
    with torch.no_grad():  # a [PAD] row far outside the others' range, as padding with it would add
        spiky.embeddings.piece_embeddings.weight[0] = 0.0
        spiky.embeddings.piece_embeddings.weight[0, 3] = 100.0
    for copy_ in (quantized.fast_fp32_bert(spiky), quantize_bert(spiky, None)):
        # The padding rows copy the first row, so int8's per-call range is the same: the
        # real rows' states are those without padding.
        with torch.no_grad():
            padded, _ = copy_.forward_packed(buckets)
            copy_.row_buckets = False
            unpadded, _ = copy_.forward_packed(buckets)
        torch.testing.assert_close(padded, unpadded, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        reference, _ = bert.forward_packed(buckets)
    torch.testing.assert_close(padded, reference, rtol=0.1, atol=0.1)  # int8 against fp32, loosely


@pytest.mark.parametrize("options,message", [
    ({"n_texts": 0}, r"--n-texts must be at least 1"),
    ({"n_texts": -3}, r"--n-texts must be at least 1"),
    ({"target_cosine": 1.5}, r"--target-cosine must be in \(0, 1\]"),
    ({"target_cosine": 0.0}, r"--target-cosine must be in \(0, 1\]"),
])
def test_quantize_options_out_of_range_are_refused_before_loading(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        quantize_pipeline(tmp_path / "not-loaded", tmp_path / "out", dtype="int8", **options)
    assert not (tmp_path / "out").exists()


def test_pinned_fp32_backends_are_taken_without_timing(monkeypatch):
    from spacy_bert_cls.pytorch import quantized

    monkeypatch.setattr(quantized, "_BACKENDS", {})
    monkeypatch.setattr(quantized, "onednn_available", lambda: True)
    quantized.pin_fp32_backends({"8 x 24": "onednn", "24 x 8": "mkl"})
    assert quantized.fp32_backend_choices() == {"8 x 24": "onednn", "24 x 8": "mkl"}

    def no_timing():
        raise AssertionError("a pinned shape was timed again")

    assert quantized.fp32_backend(torch.nn.Linear(8, 24), timer=no_timing) == "onednn"
    monkeypatch.setattr(quantized, "onednn_available", lambda: False)
    monkeypatch.setattr(quantized, "_BACKENDS", {})
    quantized.pin_fp32_backends({"8 x 24": "onednn"})  # a build without oneDNN times it itself
    assert quantized.fp32_backend_choices() == {}
