"""Hostile files: every malformed input stops with an error that names the file (and the
line, for data files) and says what is wrong, and leaves no output behind.

Each case goes through a command that would write something: `pretrain` (checkpoints,
pretraining configs and raw text), `convert` (training data) and `spacy train` (training
configs and checkpoints). The cases are counted in MALFORMED_CASES for the README.
"""
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from thinc.api import Config
from typer.testing import CliRunner

from spacy_bert_cls.cli import app
from spacy_bert_cls.convert import convert
from spacy_bert_cls.errors import CheckpointError, DataError
from spacy_bert_cls.pretraining.train import pretrain

from .conftest import tiny_vocab, write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "corpus" / "raw" / "pretrain.txt"
MARKER = "pwned-by-pickle"


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _continue_config(bert: Path, raw: Path = RAW) -> Config:
    config = Config().from_disk(ROOT / "configs" / "pretrain_continue.cfg")
    config["paths"].update({"raw": str(raw), "dev": None, "bert": str(bert)})
    config["objective"]["max_length"] = 32
    config["training"].update({"max_steps": 1, "batch_size": 2, "checkpoint_every": 1, "log_every": 1})
    return config


def _listing(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# Checkpoints: (what is done to a good tiny checkpoint, the file the error names, what it says)

def _tensors(folder):
    return load_file(str(folder / "model.safetensors"))


def _edit_tensors(edit):
    def apply(folder):
        tensors = _tensors(folder)
        edit(tensors)
        save_file(tensors, str(folder / "model.safetensors"))
    return apply


def _edit_config(edit):
    def apply(folder):
        data = json.loads((folder / "config.json").read_text())
        edit(data)
        (folder / "config.json").write_text(json.dumps(data))
    return apply


def _cut(name, keep):
    def apply(folder):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:keep(len(data))])
    return apply


def _corrupt_header(folder):
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[8:20] = b"\xff" * 12
    (folder / "model.safetensors").write_bytes(bytes(data))


def _nan_weights(folder):
    tensors = _tensors(folder)
    tensors["encoder.layer.0.output.dense.weight"][3, 5] = float("nan")
    save_file(tensors, str(folder / "model.safetensors"))


def _as_torch_bin(extra=None, cut=False):
    def apply(folder):
        tensors = _tensors(folder)
        (folder / "model.safetensors").unlink()
        with open(folder / "pytorch_model.bin", "wb") as file_:
            if extra is None:
                torch.save(tensors, file_)
            else:
                pickle.dump({**extra(), **tensors}, file_)
        if cut:
            _cut("pytorch_model.bin", lambda n: n // 3)(folder)
    return apply


def _missing_shard(folder):
    tensors = _tensors(folder)
    (folder / "model.safetensors").unlink()
    keys = sorted(tensors)
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file({k: tensors[k] for k in keys[::2]}, str(folder / names[0]))
    weight_map = {k: names[i % 2] for i, k in enumerate(keys)}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def _empty_folder(folder):
    for path in folder.iterdir():
        path.unlink()


def _write(name, content):
    def apply(folder):
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    return apply


def _extra_vocab(folder):
    with (folder / "vocab.txt").open("a", encoding="utf8") as file_:
        file_.write("extra1\nextra2\n")


CHECKPOINT_CASES = {
    "safetensors-header-only": (_cut("model.safetensors", lambda n: 10), "model.safetensors",
                                "not a readable safetensors file"),
    "safetensors-truncated": (_cut("model.safetensors", lambda n: n // 2), "model.safetensors",
                              "not a readable safetensors file"),
    "safetensors-corrupt-header": (_corrupt_header, "model.safetensors", "not a readable safetensors file"),
    "tensor-wrong-shape": (_edit_tensors(lambda t: t.__setitem__("encoder.layer.0.intermediate.dense.weight",
                                                                 torch.zeros(65, 32))),
                           "model.safetensors", r"encoder\.layer\.0\.intermediate\.dense\.weight has shape \[65, 32\]"),
    "tensor-wrong-dtype": (_edit_tensors(lambda t: t.__setitem__("embeddings.LayerNorm.bias",
                                                                 torch.zeros(32, dtype=torch.int64))),
                           "model.safetensors", r"embeddings\.LayerNorm\.bias has dtype torch\.int64"),
    "tensor-not-finite": (_nan_weights, "model.safetensors",
                          r"encoder\.layer\.0\.output\.dense\.weight has 1 value\(s\) that are NaN or infinite"),
    "tensor-missing": (_edit_tensors(lambda t: t.pop("encoder.layer.1.attention.self.key.weight")),
                       "model.safetensors", r"missing tensor\(s\): encoder\.layer\.1\.attention\.self\.key\.weight"),
    "tensor-extra": (_edit_tensors(lambda t: t.__setitem__("encoder.layer.2.output.dense.bias", torch.zeros(32))),
                     "model.safetensors", r"unexpected tensor\(s\) for a 2-layer BERT"),
    "tensor-foreign": (_edit_tensors(lambda t: t.__setitem__("roberta.embeddings.weight", torch.zeros(3))),
                       "model.safetensors", "neither BERT encoder nor known head weights"),
    "config-missing-field": (_edit_config(lambda c: c.pop("hidden_size")), "config.json",
                             r"missing field\(s\): hidden_size"),
    "config-mistyped-field": (_edit_config(lambda c: c.__setitem__("num_attention_heads", "4")), "config.json",
                              "num_attention_heads must be int"),
    "config-not-json": (_write("config.json", '{"hidden_size": 32,'), "config.json", "invalid JSON at line 1"),
    "config-not-utf8": (_write("config.json", b'{"model_type": "b\xe9rt"}'), "config.json", "not UTF-8"),
    "config-not-an-object": (_write("config.json", "[1, 2]"), "config.json", "expected a JSON object"),
    "vocab-does-not-match-embeddings": (_extra_vocab, "vocab.txt",
                                        r"the tokenizer has \d+ entries but config\.json says vocab_size = \d+"),
    "vocab-not-utf8": (_write("vocab.txt", b"[PAD]\n[UNK]\n\xff\xfe\n"), "vocab.txt", "not UTF-8"),
    "tokenizer-json-corrupt": (_write("tokenizer.json", '{"model": {"type": "WordPiece"'), "tokenizer.json",
                               "not a readable tokenizers JSON file"),
    "empty-folder": (_empty_folder, "", r"no tokenizer\.json or vocab\.txt in this folder"),
    "no-weights-file": (lambda f: (f / "model.safetensors").unlink(), "", "no weights found"),
    "pickle-that-runs-code": (_as_torch_bin(extra=lambda: {"evil": _RunsCode()}), "pytorch_model.bin",
                              "refusing to unpickle"),
    "torch-bin-truncated": (_as_torch_bin(cut=True), "pytorch_model.bin", "not a readable PyTorch weights file"),
    "shard-missing": (_missing_shard, "model-00002-of-00002.safetensors", "shard named in .* is missing"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_malformed_checkpoint(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    damage, file_name, what = CHECKPOINT_CASES[case]
    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt")
    damage(checkpoint)
    out = tmp_path / "out"
    with pytest.raises((CheckpointError, DataError, ValueError)) as err:
        pretrain(_continue_config(checkpoint), out)
    message = str(err.value)
    assert str(checkpoint / file_name) in message, message
    assert re.search(what, message), message
    assert not out.exists(), _listing(out)
    assert not (tmp_path / MARKER).exists(), "the pickle ran code"


def test_malformed_checkpoint_in_spacy_train(tmp_path):
    """The same checks hold when `spacy train` initializes the bert component."""
    from spacy.cli.train import train

    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt")
    _cut("model.safetensors", lambda n: n // 2)(checkpoint)
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n')
    out = tmp_path / "out"
    overrides = {"paths.train": str(data), "paths.dev": str(data), "paths.bert": str(checkpoint),
                 "components.bert.model.vocab_size": len(tiny_vocab()), "components.bert.model.hidden_size": 32,
                 "components.bert.model.num_hidden_layers": 2, "components.bert.model.num_attention_heads": 4,
                 "components.bert.model.intermediate_size": 64,
                 "components.bert.model.max_position_embeddings": 64, "components.bert.model.window_size": 16,
                 "components.bert.model.stride": 8}
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        train(ROOT / "configs" / "textcat.cfg", out, overrides=overrides)
    assert _listing(out) == []  # spaCy made the folder; nothing was saved in it


# Configs

def _config_file(tmp_path, text):
    path = tmp_path / "pretrain.cfg"
    path.write_text(text)
    return path


PRETRAIN_CONFIG_CASES = {
    "unknown-key": ("[training]\nbatch_sise = 8\n", r"unknown setting\(s\) in \[training\]: batch_sise"),
    "wrong-type": ("[training]\nbatch_size = \"eight\"\n", r"\[training\] batch_size must be int, got 'eight'"),
    "not-a-config": ("batch_size: 8\n", "not a valid config.*no section headers"),
    "duplicate-section": ("[training]\nseed = 1\n[training]\nseed = 2\n", "not a valid config.*already exists"),
    "bad-reference": ("[paths]\nraw = null\ndev = ${nowhere.dev}\n", "not a valid config.*nowhere"),
}


@pytest.mark.parametrize("case", sorted(PRETRAIN_CONFIG_CASES))
def test_malformed_pretraining_config(tmp_path, case):
    text, what = PRETRAIN_CONFIG_CASES[case]
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg").to_str()
    path = _config_file(tmp_path, text if case in ("not-a-config", "bad-reference") else config + "\n" + text)
    if case in ("unknown-key", "wrong-type"):
        # Appended settings override the shipped ones inside the same section.
        base = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
        base["training"].update(Config().from_str(text)["training"])
        base.to_disk(path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["pretrain", str(path), str(out), "--paths.raw", str(RAW)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert str(path) in output and re.search(what, output), output
    assert not out.exists()


TRAIN_CONFIG_CASES = {
    "unknown-key": ({"components.bert.model.window_sise": 16}, "window_sise"),
    "wrong-type": ({"components.bert.model.window_size": "big"}, "window_size"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CONFIG_CASES))
def test_malformed_training_config(tmp_path, capsys, case):
    from spacy.cli.train import train

    overrides, what = TRAIN_CONFIG_CASES[case]
    config = tmp_path / "textcat.cfg"
    shutil.copyfile(ROOT / "configs" / "textcat.cfg", config)
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        train(config, out, overrides={"paths.train": str(RAW), "paths.dev": str(RAW), **overrides})
    printed = " ".join(capsys.readouterr().out.split())
    # spaCy's own message: it names the setting (the file is the one given to spacy train).
    assert f"bert.model -> {what}" in printed and "Config" in printed, printed
    assert _listing(out) == []


# Data files: (file name, content, the error's "file:line: what")

BIG = 10_000_001
DATA_CASES = {
    "jsonl-bad-json": ("d.jsonl", '{"text": "ok", "label": "pos"}\n{"text": "x", "label": \n', r"d\.jsonl:2: invalid JSON"),
    "jsonl-latin1": ("k.jsonl", b'{"text": "caf\xe9", "label": "pos"}\n', r"k\.jsonl:1: not valid UTF-8"),
    "jsonl-utf16": ("u.jsonl", '{"text": "ok", "label": "pos"}\n'.encode("utf-16"), r"u\.jsonl:1: not valid UTF-8"),
    "jsonl-empty": ("e.jsonl", "", r"e\.jsonl: no examples"),
    "jsonl-huge-line": ("h.jsonl", '{"text": "ok", "label": "pos"}\n{"text": "' + "x" * BIG + '"}\n',
                        r"h\.jsonl:2: line longer than 10,000,000 bytes"),
    "jsonl-lone-surrogate": ("s.jsonl", '{"text": "ok \\ud83d", "label": "pos"}\n',
                             r"s\.jsonl:1: \"text\" has a lone surrogate \(U\+D83D at character 3\)"),
    "jsonl-raw-nul": ("n.jsonl", '{"text": "a\x00b", "label": "pos"}\n', r"n\.jsonl:1: invalid JSON: Invalid control character"),
    "jsonl-not-an-object": ("o.jsonl", '["good film", "pos"]\n', r"o\.jsonl:1: expected a JSON object"),
    "conll-one-column": ("a.conll", "John\tB-PER\nvisited\n", r"a\.conll:2: only one column"),
    "conll-bad-tag": ("t.conll", "John\tPERSON\n", r"t\.conll:1: tag 'PERSON' is not IOB2"),
    "conll-bad-iob": ("b.conll", "John\tB-PER\nSmith\tI-LOC\n", r"b\.conll:2: bad IOB sequence"),
    "conll-latin1": ("l.conll", b"John\tB-PER\n\xff\tO\n", r"l\.conll:2: not valid UTF-8"),
    "conll-empty": ("j.conll", "\n\n", r"j\.conll: no examples"),
    "conll-huge-line": ("g.conll", "John\tB-PER\n" + "x" * BIG + "\tO\n", r"g\.conll:2: line longer than"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_malformed_training_data(tmp_path, case):
    name, content, what = DATA_CASES[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    out = tmp_path / "out" / "result.spacy"
    with pytest.raises(DataError, match=what) as err:
        convert(path, out)
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists() or _listing(tmp_path / "out") == []


RAW_CASES = {
    "raw-empty": ("r.txt", b"", r"r\.txt: no text in the file"),
    "raw-blank": ("r.txt", b"\n  \n\t\n", r"r\.txt: no text in the file"),
    "raw-latin1": ("r.txt", b"good line\n\xff\xfe bad\n", r"r\.txt:2: not UTF-8"),
    "raw-utf16": ("r.txt", "text in UTF-16\n".encode("utf-16"), r"r\.txt:1: not UTF-8"),
    "raw-jsonl-bad-json": ("r.jsonl", b'{"text": "a"}\n{oops\n', r"r\.jsonl:2: invalid JSON"),
    "raw-jsonl-no-text": ("r.jsonl", b'{"text": "a"}\n{"text": 3}\n', r"r\.jsonl:2: expected an object with a string"),
    "raw-jsonl-lone-surrogate": ("r.jsonl", b'{"text": "a \\udc00 b"}\n', r"r\.jsonl:1: \"text\" has a lone surrogate"),
    "raw-huge-line": ("r.txt", b"short\n" + b"y" * 4_000_010 + b"\n", r"r\.txt:2: line of over"),
}


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_malformed_pretraining_text(tmp_path, case):
    name, content, what = RAW_CASES[case]
    raw = tmp_path / name
    raw.write_bytes(content)
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
    config["paths"]["raw"] = str(raw)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=what):
        pretrain(config, out)
    assert not out.exists()
    # The raw-text converter reads the same files the same way.
    with pytest.raises(DataError, match=what):
        convert(raw, tmp_path / "converted.txt", format="raw")
    assert not (tmp_path / "converted.txt").exists()


def test_spacy_file_that_is_not_a_docbin(tmp_path):
    import spacy

    from spacy_bert_cls.data.readers import create_corpus_reader_v1

    path = tmp_path / "train.spacy"
    path.write_bytes(b"\x00not msgpack at all\xff" * 10)
    with pytest.raises(DataError, match=r"train\.spacy: not a valid \.spacy \(DocBin\) file"):
        list(create_corpus_reader_v1(path)(spacy.blank("en")))


MALFORMED_CASES = (len(CHECKPOINT_CASES) + 1 + len(PRETRAIN_CONFIG_CASES) + len(TRAIN_CONFIG_CASES)
                   + len(DATA_CASES) + len(RAW_CASES) + 1)


def test_there_are_at_least_25_distinct_cases():
    assert MALFORMED_CASES >= 25
