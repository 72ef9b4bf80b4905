"""The shipped configs train with `spacy train` (tiny encoder, demo corpus) and reload."""
from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train

from .conftest import TINY_SIZES, tiny_vocab

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


def _overrides(checkpoint, train_path, dev_path):
    sizes = {"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 32, "stride": 24}
    overrides = {f"components.bert.model.{k}": v for k, v in sizes.items()}
    overrides.update({
        "paths.train": str(train_path), "paths.dev": str(dev_path), "paths.bert": str(checkpoint),
        "training.max_steps": 4, "training.eval_frequency": 2, "corpora.train.limit": 40,
        "corpora.dev.limit": 20, "training.optimizer.learn_rate.warmup_steps": 1,
    })
    return overrides


@pytest.mark.parametrize(
    "config,train_file,dev_file",
    [("textcat.cfg", "textcat/train.jsonl", "textcat/dev.jsonl"),
     ("ner.cfg", "ner/train.conll", "ner/dev.conll")],
)
def test_config_trains_and_reloads(tiny_checkpoint, tmp_path, config, train_file, dev_file):
    overrides = _overrides(tiny_checkpoint, CORPUS / train_file, CORPUS / dev_file)
    train(ROOT / "configs" / config, tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp.pipe_names[0] == "bert"
    doc = nlp("The food at the cafe in Paris was great .")
    assert doc.cats if "textcat" in nlp.pipe_names else doc.ents is not None
