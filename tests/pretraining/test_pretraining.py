"""Pretraining: masks, NSP pairs, export parity, resume, torchrun, bad input."""
import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from thinc.api import Config

from spacy_bert_cls.checkpoint.hf import save_pretraining_checkpoint
from spacy_bert_cls.errors import DataError
from spacy_bert_cls.pretraining.data import iter_documents
from spacy_bert_cls.pretraining.fill_mask import fill_mask
from spacy_bert_cls.pretraining.instances import IS_NEXT, RANDOM_NEXT, InstanceStream
from spacy_bert_cls.pretraining.masking import mask_pieces, step_generator
from spacy_bert_cls.pretraining.train import latest_checkpoint, pretrain
from spacy_bert_cls.pytorch import BertConfig
from spacy_bert_cls.pytorch.heads import BertForPreTraining
from spacy_bert_cls.tokenization import load_piece_tokenizer

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "corpus" / "raw" / "pretrain.txt"
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
              "max_position_embeddings": 64}


def _batch(seed=0, rows=64, cols=128):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 1000, (rows, cols), generator=g)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False
    maskable[: rows // 4, cols // 2:] = False  # padding
    return ids, maskable


def _mask(ids, maskable, step=0, continuation=None):
    return mask_pieces(ids, maskable, mask_id=4, random_ids=torch.arange(10, 1000),
                       generator=step_generator(0, step), continuation=continuation)


def test_masking_rates_and_specials():
    ids, maskable = _batch()
    masked = _mask(ids, maskable)
    selected = torch.zeros_like(maskable)
    selected[masked.positions[:, 0], masked.positions[:, 1]] = True
    assert not (selected & ~maskable).any(), "a special or padding position was masked"
    assert abs(selected.sum().item() / maskable.sum().item() - 0.15) < 0.01
    as_mask = (masked.input_ids[selected] == 4).float().mean().item()
    unchanged = (masked.input_ids[selected] == ids[selected]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.03 and abs(unchanged - 0.1) < 0.03
    assert torch.equal(masked.labels, ids[selected])
    assert torch.equal(masked.input_ids[~selected], ids[~selected])


def test_fixed_seed_gives_the_same_masks_and_steps_differ():
    ids, maskable = _batch()
    a, b, c = _mask(ids, maskable, 3), _mask(ids, maskable, 3), _mask(ids, maskable, 4)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, c.positions)


def test_whole_word_masking_takes_whole_words():
    ids, maskable = _batch()
    continuation = torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) < 0.3
    masked = _mask(ids, maskable, continuation=continuation)
    selected = torch.zeros_like(maskable)
    selected[masked.positions[:, 0], masked.positions[:, 1]] = True
    word_start = maskable & ~continuation
    word_id = torch.cumsum(word_start.long(), 1)
    for row in range(ids.shape[0]):
        for word in word_id[row][selected[row]].unique().tolist():
            pieces = (word_id[row] == word) & maskable[row]
            assert selected[row][pieces].all()
    assert abs(selected.sum().item() / maskable.sum().item() - 0.15) < 0.03


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return load_piece_tokenizer(tiny_checkpoint)


def test_nsp_pairs_are_balanced_and_well_formed(tokenizer):
    stream = InstanceStream(RAW, tokenizer, max_length=64, nsp=True, seed=0, epochs=1)
    instances = list(stream)
    labels = collections.Counter(x.nsp_label for x in instances)
    assert abs(labels[IS_NEXT] / len(instances) - 0.5) < 0.06 and labels[RANDOM_NEXT] > 0
    for x in instances:
        assert len(x.ids) <= 64 and x.ids[0] == tokenizer.cls_id and x.ids[-1] == tokenizer.sep_id
        assert x.ids.count(tokenizer.sep_id) >= 2
        first_b = x.type_ids.index(1)
        assert x.ids[first_b - 1] == tokenizer.sep_id
    again = list(InstanceStream(RAW, tokenizer, max_length=64, nsp=True, seed=0, epochs=1))
    assert [x.ids for x in again] == [x.ids for x in instances]


def test_without_nsp_sequences_are_packed_full(tokenizer):
    instances = list(InstanceStream(RAW, tokenizer, max_length=64, nsp=False, seed=0, epochs=1))
    assert all(len(x.ids) == 64 for x in instances[:-1])


def test_shards_split_the_documents(tokenizer, tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text("".join(f"document {i} first line .\nand second line {i} .\n\n" for i in range(10)))
    docs = [InstanceStream(raw, tokenizer, max_length=64, nsp=False, seed=0, rank=r, world_size=2).documents()
            for r in (0, 1)]
    counts = [len(list(d)) for d in docs]
    assert counts == [5, 5]


def test_export_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = BertConfig(vocab_size=60, **TINY_MODEL)
    torch.manual_seed(0)
    ours = BertForPreTraining(config).eval()
    save_pretraining_checkpoint(tmp_path, config, ours.state_dict())
    hf = transformers.BertForPreTraining.from_pretrained(str(tmp_path)).eval()
    ids = torch.randint(5, 60, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    with torch.no_grad():
        mlm, nsp = ours(ids, mask, types)
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()
    assert (mlm[real] - expected.prediction_logits[real]).abs().max() < 1e-4
    assert (nsp - expected.seq_relationship_logits).abs().max() < 1e-4


def _config(**training):
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
    config["paths"]["raw"] = str(RAW)
    config["paths"]["dev"] = str(RAW)
    config["model"].update(TINY_MODEL)
    config["tokenizer"]["vocab_size"] = 800
    config["objective"]["max_length"] = 64
    config["training"].update({"max_steps": 12, "batch_size": 8, "warmup_steps": 3, "log_every": 4,
                               "eval_frequency": 6, "eval_batches": 2, "checkpoint_every": 4,
                               "keep_checkpoints": 5, **training})
    return config


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    torch.set_num_threads(1)
    import shutil

    straight = pretrain(_config(), tmp_path / "straight")
    interrupted = tmp_path / "interrupted"
    # tokenizers' WordPiece trainer breaks ties differently from run to run: a run keeps
    # its vocabulary in OUTPUT/vocab (resumes reuse it); here both runs share one.
    shutil.copytree(tmp_path / "straight" / "vocab", interrupted / "vocab")
    pretrain(_config(max_steps=12, checkpoint_every=4), interrupted)
    # Simulate a crash after step 8: drop what came later, then resume.

    shutil.rmtree(interrupted / "model-last")
    shutil.rmtree(interrupted / "checkpoint-00000012")
    assert latest_checkpoint(interrupted).name == "checkpoint-00000008"
    resumed = pretrain(_config(), interrupted, resume=True)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log = (tmp_path / "straight" / "log.csv").read_text()
    assert "eval" in log and "mlm_perplexity" in log
    # the resumed run's clock goes on from its checkpoint's row (it started again at 0)
    import csv

    rows = list(csv.DictReader((interrupted / "log.csv").open()))
    elapsed = [float(r["elapsed_seconds"]) for r in rows]
    assert elapsed == sorted(elapsed), elapsed
    assert (tmp_path / "straight" / "curves.png").stat().st_size > 0 or pytest.importorskip("matplotlib")


def test_a_vocabulary_is_reused_only_if_learnt_from_the_same_text_and_settings(tmp_path, monkeypatch):
    """OUTPUT/vocab left by a run on other text (one that stopped before its first checkpoint)
    was reused, silently."""
    from spacy_bert_cls.pretraining import build
    from spacy_bert_cls.pretraining.distributed import init_distributed
    from spacy_bert_cls.pretraining.settings import Settings

    learnt = []
    train = build.train_wordpiece
    monkeypatch.setattr(build, "train_wordpiece", lambda *a, **k: learnt.append(1) or train(*a, **k))
    other = tmp_path / "other.txt"
    other.write_text("".join(f"zyzzyva quux number {i} .\nzyzzyva again {i} .\n\n" for i in range(50)))
    config = _config()
    config["paths"]["raw"] = str(other)
    single, out = init_distributed(False), tmp_path / "run"

    def vocabulary(config):
        return build.build_tokenizer(Settings.from_config(config), None, out, single).tokenizer.get_vocab()

    assert "zyzzyva" in vocabulary(config) and len(learnt) == 1
    first = vocabulary(_config())
    assert "zyzzyva" not in first and len(learnt) == 2
    assert vocabulary(_config()) == first and len(learnt) == 2  # the same text and settings: reused
    smaller = _config()
    smaller["tokenizer"]["vocab_size"] = 400
    vocabulary(smaller)
    assert len(learnt) == 3  # other settings: learnt anew
    (out / "vocab" / build.VOCAB_SOURCE).unlink()
    vocabulary(smaller)
    assert len(learnt) == 4  # a vocabulary of unknown origin (written before source.json): learnt anew


def test_a_vocabulary_smaller_or_larger_than_asked_says_so(tmp_path, caplog):
    """vocab_size 10 gave 64 entries (the characters come first), with no word of it."""
    from spacy_bert_cls.pretraining.build import build_tokenizer
    from spacy_bert_cls.pretraining.distributed import init_distributed
    from spacy_bert_cls.pretraining.settings import Settings

    config = _config()
    config["tokenizer"]["vocab_size"] = 10
    with caplog.at_level("WARNING"):
        size = build_tokenizer(Settings.from_config(config), None, tmp_path / "run", init_distributed(False)).vocab_size
    assert size > 10 and f"has {size} entries where [tokenizer] vocab_size asks for 10" in caplog.text


def test_resume_with_another_model_size_is_refused(tmp_path):
    """--resume with --model.hidden_size 128 went on with the checkpoint's size, silently."""
    config = _config(max_steps=4, checkpoint_every=2, eval_frequency=4)
    config["model"]["vocab_size"] = 5000  # the vocabulary's size wins, at the start and on resume
    pretrain(config, tmp_path / "run")
    pretrain(config, tmp_path / "run", resume=True)
    config["model"]["hidden_size"] = 64
    with pytest.raises(ValueError, match="the run being resumed has hidden_size = 32, not 64"):
        pretrain(config, tmp_path / "run", resume=True)


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    pretrain(_config(max_steps=4), tmp_path / "run")
    with pytest.raises(ValueError, match="--resume"):
        pretrain(_config(max_steps=4), tmp_path / "run")


def test_continue_from_a_checkpoint_without_mlm_head_and_fill_mask(tiny_checkpoint, tmp_path):
    config = Config().from_disk(ROOT / "configs" / "pretrain_continue.cfg")
    config["paths"].update({"raw": str(RAW), "dev": str(RAW), "bert": str(tiny_checkpoint)})
    config["training"].update({"max_steps": 4, "batch_size": 4, "log_every": 2, "eval_frequency": 4,
                               "eval_batches": 1, "checkpoint_every": 4})
    config["objective"]["max_length"] = 32
    out = pretrain(config, tmp_path / "cont")
    assert "cls.predictions.bias" in _weights(out)
    results = fill_mask(out, "the film was [MASK] .", top_k=3)
    assert len(results) == 1 and len(results[0]) == 3
    assert all(0.0 <= r["score"] <= 1.0 for r in results[0])
    with pytest.raises(Exception, match="masked-LM head"):
        fill_mask(tiny_checkpoint, "the [MASK]")
    # pretrain.cfg's [model] sizes with --paths.bert: the checkpoint's sizes win, on resume too
    config["model"].update({"hidden_size": 256, "num_hidden_layers": 4})
    pretrain(config, tmp_path / "cont", resume=True)


@pytest.mark.parametrize(
    "content,message",
    [(b"", "no text in the file"), (b"\n\n  \n", "no text"), (b"good line\n\xff\xfe bad\n", r":2: not UTF-8"),
     (b'{"text": "a"}\n{"text": 3}\n', r":2: expected an object with a string \"text\""),
     (b'{"text": "a"}\n{oops\n', r":2: invalid JSON")],
    ids=["empty", "blank", "not-utf8", "no-text", "bad-json"],
)
def test_bad_raw_files(tmp_path, content, message):
    path = tmp_path / ("raw.jsonl" if b"{" in content else "raw.txt")
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        list(iter_documents(path))


def test_a_folder_or_no_file_as_raw(tmp_path):
    """A folder was called "no such file"."""
    with pytest.raises(DataError, match="is a folder: give one raw text file"):
        list(iter_documents(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        list(iter_documents(tmp_path / "missing.txt"))


def test_huge_line_is_refused_with_its_line_number(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text("short\n" + "x" * 2000 + "\n")
    with pytest.raises(DataError, match=r"raw\.txt:2: line of 2,000 characters"):
        list(iter_documents(path, max_line_chars=1000))


def test_config_errors_name_the_setting(tmp_path):
    with pytest.raises(ValueError, match=r"\[paths\] raw is not set"):
        pretrain(Config().from_disk(ROOT / "configs" / "pretrain.cfg"), tmp_path / "x")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) in \[training\]: bogus"):
        pretrain(_config(bogus=1), tmp_path / "y")
    with pytest.raises(ValueError, match=r"\[training\] batch_size must be int"):
        pretrain(_config(batch_size="8"), tmp_path / "z")


def test_torchrun_two_processes_gloo(tmp_path):
    pytest.importorskip("torch.distributed.run")
    config = tmp_path / "pretrain.cfg"
    _config(max_steps=4, checkpoint_every=4, eval_frequency=4).to_disk(config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "spacy_bert_cls", "pretrain", str(config), str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "out" / "model-last" / "model.safetensors").is_file()


def test_model_last_loads_in_transformers_with_the_same_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    out = pretrain(_config(max_steps=2, checkpoint_every=2, eval_frequency=2), tmp_path / "run")
    hf = transformers.BertForPreTraining.from_pretrained(str(out)).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    ours_tokenizer = load_piece_tokenizer(out)
    text = "The river rose by sixty centimetres after the [MASK] rain."
    batch = hf_tokenizer(text, return_tensors="pt")
    ids, _ = ours_tokenizer.encode_batch([text])[0]
    assert batch["input_ids"][0].tolist() == [ours_tokenizer.cls_id] + ids.tolist() + [ours_tokenizer.sep_id]
    from spacy_bert_cls.pretraining.fill_mask import FillMask

    ours = FillMask(out).model
    with torch.no_grad():
        mlm, nsp = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        expected = hf(**batch)
    assert (mlm - expected.prediction_logits).abs().max() < 1e-4
    assert (nsp - expected.seq_relationship_logits).abs().max() < 1e-4


def test_fill_mask_command(tmp_path):
    from typer.testing import CliRunner

    from spacy_bert_cls.cli import app

    out = pretrain(_config(max_steps=2, checkpoint_every=2, eval_frequency=2), tmp_path / "run")
    result = CliRunner().invoke(app, ["fill-mask", str(out), "the [MASK] was cold .", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert "[MASK] 1:" in result.output
    result = CliRunner().invoke(app, ["fill-mask", str(out), "no mask here"])
    assert result.exit_code == 1 and "no [MASK]" in result.output
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "config.cfg").write_text("")
    (pipeline / "meta.json").write_text("{}")
    result = CliRunner().invoke(app, ["fill-mask", str(pipeline), "the [MASK] ."])
    assert result.exit_code == 1 and "is a spaCy pipeline, which has no masked-LM head" in result.output
    for k in ("0", "-3", "100000"):  # a traceback (topk's index error) or an empty answer before
        result = CliRunner().invoke(app, ["fill-mask", str(out), "the [MASK] .", "--top-k", k])
        assert result.exit_code == 1 and f"--top-k {k}: give 1 to the vocabulary's" in result.output, result.output
