"""A continue config (pretrain_continue.cfg) without a checkpoint stops before writing
anything, instead of pretraining a random BERT-base from scratch. (NSP document counts:
test_nsp_pairs.py; tagged data given as raw text: test_tagged_input.py.)"""
from pathlib import Path

import pytest
from thinc.api import Config
from typer.testing import CliRunner

from spacy_bert_cls.pretraining.train import pretrain

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "corpus" / "raw" / "pretrain.txt"
CONTINUE_CFG = ROOT / "configs" / "pretrain_continue.cfg"


def _continue_config(**paths) -> Config:
    config = Config().from_disk(CONTINUE_CFG)
    config["paths"].update({"raw": str(RAW), "dev": None, **paths})
    # Small, so that a run which wrongly starts anyway ends fast.
    config["objective"]["max_length"] = 32
    config["training"].update({"max_steps": 1, "batch_size": 2, "checkpoint_every": 1, "log_every": 1})
    config["tokenizer"]["vocab_size"] = 200
    config["model"].update({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 64})
    return config


def test_continue_config_without_a_checkpoint_stops_before_writing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        pretrain(_continue_config(), out, config_path=CONTINUE_CFG)
    message = str(err.value)
    assert str(CONTINUE_CFG) in message
    assert "--paths.bert CHECKPOINT_DIR" in message and "configs/pretrain.cfg" in message
    assert not out.exists()


def test_continue_config_without_a_checkpoint_fails_in_the_cli(tmp_path):
    from spacy_bert_cls.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["pretrain", str(CONTINUE_CFG), str(out), "--paths.raw", str(RAW),
                                      "--training.max_steps", "1", "--training.batch_size", "2",
                                      "--objective.max_length", "32", "--tokenizer.vocab_size", "200",
                                      "--training.checkpoint_every", "1"])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "--paths.bert CHECKPOINT_DIR" in output and "Saved" not in output
    assert not out.exists()


def test_continue_config_with_a_checkpoint_still_runs(tiny_checkpoint, tmp_path):
    config = _continue_config(bert=str(tiny_checkpoint))
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        del config["model"][key]
    out = pretrain(config, tmp_path / "out", config_path=CONTINUE_CFG)
    assert (out / "model.safetensors").is_file()
