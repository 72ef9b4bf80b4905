"""spacy-bert-cls distill: a tiny teacher (bert_textcat + bert_ner, 4 layers) into a 2-layer
student that loads, predicts with the teacher's labels, saves, packages and quantizes; a
stopped run resumes at its checkpoint's step; bad inputs are one-line errors."""
import json
import re
import subprocess
import sys

import pytest
import spacy
from typer.testing import CliRunner

from spacy_bert_cls.cli import app
from spacy_bert_cls.distill import Settings, distill, layer_map
from spacy_bert_cls.distill.data import WordReplacer, _shape
from spacy_bert_cls.distill.losses import attention_loss, cats_loss, tags_loss
from spacy_bert_cls.models.encoder import get_bert_shim
from spacy_bert_cls.testing import write_tiny_checkpoint

from .pipeline.test_heads import TRAIN, make_nlp, train
from .test_configs import CORPUS

RAW = CORPUS / "textcat" / "train.jsonl"
DEV = CORPUS / "textcat" / "dev.jsonl"
FAST = dict(layers=2, data=RAW, steps=6, batch_size=8, checkpoint_every=3, log_every=3, eval_every=3)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads per run made these tests
    3x slower (57 s against 17 s) whenever another process was busy."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_model_config):
    folder = tmp_path_factory.mktemp("distill")
    checkpoint = write_tiny_checkpoint(folder / "ckpt", num_hidden_layers=4)
    nlp = make_nlp({**tiny_model_config, "num_hidden_layers": 4})
    train(nlp, checkpoint, TRAIN, n_iter=10)
    nlp.to_disk(folder / "teacher")
    return folder / "teacher"


@pytest.fixture(scope="module")
def student(teacher, tmp_path_factory):
    output = tmp_path_factory.mktemp("student") / "out"
    # Gold examples of the teacher's own labels (POS, NEG): others would add no loss, an error.
    gold = output.parent / "gold.jsonl"
    gold.write_text("".join(json.dumps({"text": text, "label": max(a["cats"], key=a["cats"].get)}) + "\n"
                            for text, a in TRAIN))
    path = distill(Settings(teacher=teacher, output=output, dev=DEV, gold=gold, **FAST))
    return path


def layers_of(nlp):
    return get_bert_shim(nlp.get_pipe("bert").model).windowed.bert.config.num_hidden_layers


def test_layer_map_takes_the_first_and_last_layers_and_evenly_spaced_ones():
    assert layer_map(6, 3) == [0, 2, 5]
    assert layer_map(12, 6) == [0, 2, 4, 6, 8, 11]
    assert layer_map(6, 4) == [0, 1, 3, 5] and layer_map(6, 1) == [5] and layer_map(4, 2) == [0, 3]


def test_a_resumed_run_keeps_its_checkpoints_layer_map():
    from spacy_bert_cls.distill.resume import resumed_layer_map

    assert resumed_layer_map({"world_size": 1, "layer_map": [0, 3]}, 6, 2) == [0, 3]
    # Checkpoints written before the map was saved: the last layer of each block.
    assert resumed_layer_map({"world_size": 1}, 6, 3) == [1, 3, 5]


def test_soft_losses_vanish_when_the_student_matches():
    probs = __import__("numpy").array([[0.2, 0.8], [0.6, 0.4]], dtype="float32")
    loss, d = cats_loss(probs, probs, exclusive=True, temperature=2.0)
    assert abs(loss) < 1e-6 and abs(d).max() < 1e-6
    loss, d = cats_loss(probs, probs[::-1], exclusive=False, temperature=1.0)
    assert loss > 0 and d.shape == probs.shape
    logits = [probs * 3, probs]
    loss, grads = tags_loss(logits, [x + 1 for x in logits], temperature=2.0)  # a constant shift: same tags
    assert abs(loss) < 1e-6 and len(grads) == 2


def test_attention_loss_vanishes_on_equal_weights_and_ignores_padding():
    import torch

    from spacy_bert_cls.pytorch.packing import pack

    torch.manual_seed(0)
    heads, width = 2, 8
    student, teacher = torch.randn(3, 3 * width, requires_grad=True), torch.randn(3, 3 * width)
    padded = pack([(torch.ones(1, 5, dtype=torch.long), torch.tensor([[True, True, True, False, False]]))])[2]
    unpadded = pack([(torch.ones(1, 3, dtype=torch.long), None)])[2]
    assert float(attention_loss([teacher], [teacher], padded, heads)) == pytest.approx(0.0, abs=1e-6)
    loss = attention_loss([student], [teacher], padded, heads)
    assert loss.item() > 0
    # The two padded positions change nothing: the same loss as the 3 pieces alone.
    assert loss.item() == pytest.approx(attention_loss([student], [teacher], unpadded, heads).item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_student_is_an_ordinary_smaller_pipeline(teacher, student, tmp_path):
    t, s = spacy.load(teacher), spacy.load(student)
    assert s.pipe_names == t.pipe_names and layers_of(s) == 2 and layers_of(t) == 4
    for name in ("bert_textcat", "bert_ner"):
        assert s.get_pipe(name).labels == t.get_pipe(name).labels
    doc = s("john visited paris today")
    assert set(doc.cats) == {"POS", "NEG"}
    info = s.meta["spacy_bert_cls"]["distillation"]
    assert info["layer_map"] == [0, 3] and info["teacher_layers"] == 4 and info["steps"] == 6
    assert {"hidden", "bert_textcat", "bert_ner", "gold bert_textcat"} <= set(info["losses"])
    assert info["losses"]["gold bert_textcat"] > 0  # the gold labels are the heads' own
    assert "cats" in info["dev_agreement"]
    s.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    assert again("john visited paris today").cats == doc.cats


def test_student_packages_quantizes_and_exports(student, tmp_path):
    from spacy_bert_cls.checkpoint import read_hf_config
    from spacy_bert_cls.interop.hf_export import export_hf
    from spacy_bert_cls.quantize import quantize_pipeline

    # Calibration reads texts only: a JSONL of {"text"} without labels is enough.
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps({"text": json.loads(line)["text"]}) + "\n"
                           for line in RAW.read_text(encoding="utf8").splitlines() if line.strip()), encoding="utf8")
    quantize_pipeline(student, tmp_path / "int8", dtype="int8", data=raw, n_texts=16)
    assert spacy.load(tmp_path / "int8")("a good film").cats
    export_hf(student, tmp_path / "hf", component="bert_ner")
    assert read_hf_config(tmp_path / "hf").num_hidden_layers == 2
    (tmp_path / "packages").mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(student), str(tmp_path / "packages"),
                    "--name", "student_test", "--version", "0.0.1", "--force"], check=True, capture_output=True)
    inner = tmp_path / "packages" / "en_student_test-0.0.1" / "en_student_test" / "en_student_test-0.0.1"
    assert layers_of(spacy.load(inner)) == 2


def test_word_replacer_keeps_shapes_and_spacing_and_is_seeded_by_step():
    texts = ["John met @mary in Paris on 3 May", "the cat sat\n on  the mat !", "Acme Corp sold 12 #deals"]
    replacer = WordReplacer(texts, rate=0.9)
    first = replacer(texts * 20, seed=0, step=5)
    assert first == replacer(texts * 20, seed=0, step=5)
    assert first != replacer(texts * 20, seed=0, step=6)
    changed = 0
    for before, after in zip(texts * 20, first):
        assert re.findall(r"\s+", after) == re.findall(r"\s+", before)
        for old, new in zip(before.split(), after.split()):
            assert _shape(new) == _shape(old) and new in replacer.pools[_shape(old)]
            changed += old != new
    assert changed > 100  # about half the texts at 0.9 a word, less the words without another of their shape
    assert WordReplacer(texts, rate=0.0)(texts * 20, seed=0, step=5) == texts * 20


def test_stopped_run_resumes_from_its_checkpoint(teacher, tmp_path, caplog):
    settings = dict(teacher=teacher, output=tmp_path / "out", hidden_weight=1.0, attention_weight=1.0, augment=0.3,
                    **FAST)
    assert distill(Settings(**settings), stop_after=3) is None
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-00000003"]
    with pytest.raises(ValueError, match="--resume"):
        distill(Settings(**settings))
    with pytest.raises(ValueError, match="attention_weight 1.0, not 2.0"):
        distill(Settings(**{**settings, "attention_weight": 2.0}, resume=True))
    path = distill(Settings(**settings, resume=True))
    info = json.loads((path / "meta.json").read_text())["spacy_bert_cls"]["distillation"]
    assert info["steps"] == 6 and info["attention_weight"] == 1.0 and {"hidden", "attention"} <= set(info["losses"])
    # The same weights as a run that was never stopped.
    whole = distill(Settings(**{**settings, "output": tmp_path / "whole"}))
    for name in ("bert", "bert_textcat"):
        resumed = spacy.load(path).get_pipe(name).model.to_bytes()
        assert resumed == spacy.load(whole).get_pipe(name).model.to_bytes(), name


@pytest.mark.parametrize("args,words", [
    (["--layers", "4"], ["--layers 4", "fewer than the teacher's 4"]),
    (["--layers", "0"], ["--layers", "at least 1"]),
    (["--layers", "2", "--width", "16"], ["--width 16", "not supported yet"]),
    (["--layers", "2", "--data", "{empty}"], ["empty.txt", "no text"]),
    (["--layers", "2", "--data", "{missing}"], ["missing.txt", "no such file"]),
    (["--layers", "2", "--augment", "1.5"], ["--augment", "[0, 1)", "1.5"]),
    (["--layers", "2", "--attention-weight", "-1"], ["--attention-weight", ">= 0", "-1"]),
    (["--layers", "2", "--gold", str(CORPUS / "textcat_multilabel" / "train.jsonl")],
     ["train.jsonl", "none of its labels", "losses would be 0"]),
    (["--layers", "2", "--data", str(CORPUS / "textcat")], ["textcat", "a folder without .spacy files"]),
])
def test_bad_inputs_are_one_line_errors(teacher, tmp_path, args, words):
    (tmp_path / "empty.txt").write_text("\n\n")
    base = ["distill", str(teacher), str(tmp_path / "out"), "--data", str(RAW)]
    args = [a.format(empty=tmp_path / "empty.txt", missing=tmp_path / "missing.txt") for a in args]
    result = CliRunner().invoke(app, base + args, catch_exceptions=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and lines[-1].startswith("✘ "), result.output
    for word in words:
        assert word.lower() in lines[-1].lower(), (word, lines[-1])
    assert not (tmp_path / "out").exists()


def test_spacy_components_on_the_listener_learn_from_silver(tmp_path, tiny_checkpoint, tiny_model_config):
    """spaCy's textcat and ner on the encoder: the teacher's annotations are their targets."""
    from spacy.training import Example
    from thinc.api import Adam

    listener = {"@architectures": "spacy-bert-cls.BertListener.v1", "width": tiny_model_config["hidden_size"],
                "pooling": {"@layers": "reduce_mean.v1"}}
    nlp = spacy.blank("en")
    nlp.add_pipe("bert", config={"model": {"@architectures": "spacy-bert-cls.BertTransformer.v1",
                                           **tiny_model_config}})
    nlp.add_pipe("textcat", config={"model": {"@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True,
                                              "use_reduce_mean": True, "use_reduce_first": False,
                                              "use_reduce_last": False, "use_reduce_max": False, "tok2vec": listener}})
    nlp.add_pipe("ner", config={"model": {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
                                          "hidden_width": 16, "maxout_pieces": 2, "use_upper": True,
                                          "tok2vec": listener}})
    nlp.config["initialize"]["components"]["bert"] = {
        "loader": {"@misc": "spacy-bert-cls.HFLoader.v1", "path": str(tiny_checkpoint)}}
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": a["cats"], "entities": a["entities"]}) for t, a in TRAIN]
    optimizer = nlp.initialize(lambda: examples, sgd=Adam(1e-3))
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "teacher")
    path = distill(Settings(teacher=tmp_path / "teacher", output=tmp_path / "out", **{**FAST, "layers": 1,
                                                                                     "steps": 3}))
    info = json.loads((path / "meta.json").read_text())["spacy_bert_cls"]["distillation"]
    assert {"textcat", "ner"} <= set(info["losses"])
    student = spacy.load(path)
    assert student.get_pipe("ner").labels == nlp.get_pipe("ner").labels
    assert set(student("john visited paris").cats) == {"POS", "NEG"}


def test_output_must_be_a_folder_of_its_own(teacher, tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "used" / "model-last").mkdir(parents=True)
    for output, message in ((tmp_path / "a_file", "is a file"), (teacher, "is .*teacher, which this command reads"),
                            (teacher.parent, "holds .*teacher, which this command reads"),
                            (teacher / "out", "mix the student's files with the teacher's"),
                            (tmp_path / "used", "already holds a model-last")):
        with pytest.raises(ValueError, match=message):
            distill(Settings(teacher=teacher, output=output, **FAST))
    assert sorted(p.name for p in (tmp_path / "used").iterdir()) == ["model-last"]
    assert not (teacher / "out").exists()
    (tmp_path / "texts").mkdir()
    data = tmp_path / "texts" / "train.jsonl"
    data.write_text(RAW.read_text())
    with pytest.raises(ValueError, match="holds .*train.jsonl, which this command reads"):
        distill(Settings(teacher=teacher, output=tmp_path / "texts", **{**FAST, "data": data}))
    assert [p.name for p in (tmp_path / "texts").iterdir()] == ["train.jsonl"]


def test_resuming_with_other_steps_is_refused(teacher, tmp_path):
    settings = dict(teacher=teacher, output=tmp_path / "out", **FAST)
    assert distill(Settings(**settings), stop_after=3) is None
    with pytest.raises(ValueError, match="written with steps 6, not 8"):
        distill(Settings(**{**settings, "steps": 8}, resume=True))


def test_resuming_after_the_teacher_changed_is_refused(teacher, tmp_path):
    """A teacher retrained at the same path: the run went on from the old teacher's student
    (project.yml's all-distill then packaged it, saying it had saved a student)."""
    import shutil

    changed = tmp_path / "teacher"
    shutil.copytree(teacher, changed)
    settings = dict(teacher=changed, output=tmp_path / "out", **FAST)
    assert distill(Settings(**settings), stop_after=3) is None
    meta = json.loads((changed / "meta.json").read_text())
    (changed / "meta.json").write_text(json.dumps({**meta, "version": "0.0.2"}))
    with pytest.raises(ValueError, match="another teacher"):
        distill(Settings(**settings, resume=True))


def test_a_resumed_run_computes_on_the_fp32_backends_it_began_with(teacher, tmp_path, monkeypatch):
    """The teacher's prediction copy runs its linear layers on MKL or oneDNN as each process's
    timing chooses, and the two round differently: a checkpoint records the choices and a
    resumed run takes them (a resumed process that chose otherwise ended 2e-6 away)."""
    import torch

    from spacy_bert_cls.pytorch import quantized

    monkeypatch.setattr(quantized, "_BACKENDS", {})
    settings = dict(teacher=teacher, output=tmp_path / "out", **FAST)
    assert distill(Settings(**settings), stop_after=3) is None
    state = torch.load(tmp_path / "out" / "checkpoint-00000003" / "training_state.pt", weights_only=True)
    assert state["fp32_backends"] and state["fp32_backends"] == quantized.fp32_backend_choices()
    other = {shape: "mkl" if choice == "onednn" else "onednn" for shape, choice in state["fp32_backends"].items()}
    monkeypatch.setattr(quantized, "onednn_available", lambda: True)
    monkeypatch.setattr(quantized, "_BACKENDS", {})
    quantized.pin_fp32_backends(other)  # as a new process might have chosen
    distill(Settings(**settings, resume=True))
    assert quantized.fp32_backend_choices() == state["fp32_backends"]
