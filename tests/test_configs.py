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
    if isinstance(train_path, dict):
        overrides.update({f"paths.{k}": str(v) for k, v in train_path.items()})
        overrides.update({f"paths.{k}": str(v) for k, v in dev_path.items()})
        overrides.update({"corpora.train.limit": 40, "corpora.dev.limit": 20})
    else:
        overrides.update({"paths.train": str(train_path), "paths.dev": str(dev_path),
                          "corpora.train.limit": 40, "corpora.dev.limit": 20})
    overrides.update({
        "paths.bert": str(checkpoint),
        "training.max_steps": 4, "training.eval_frequency": 2,
        "training.optimizer.learn_rate.warmup_fraction": 0.25,
    })
    return overrides


@pytest.mark.parametrize(
    "config,train_file,dev_file",
    [("textcat.cfg", "textcat/train.jsonl", "textcat/dev.jsonl"),
     ("ner.cfg", "ner/train.conll", "ner/dev.conll"),
     ("bert_textcat.cfg", "textcat/train.jsonl", "textcat/dev.jsonl"),
     ("bert_textcat_multilabel.cfg", "textcat_multilabel/train.jsonl", "textcat_multilabel/dev.jsonl"),
     ("bert_ner.cfg", "ner/train.conll", "ner/dev.conll"),
     ("bert_textcat_ner.cfg",
      {"train": "textcat/train.jsonl", "train_ner": "ner/train.conll"},
      {"dev": "textcat/dev.jsonl", "dev_ner": "ner/dev.conll"})],
)
def test_config_trains_and_reloads(tiny_checkpoint, tmp_path, config, train_file, dev_file):
    if isinstance(train_file, dict):
        train_file = {k: CORPUS / v for k, v in train_file.items()}
        dev_file = {k: CORPUS / v for k, v in dev_file.items()}
    else:
        train_file, dev_file = CORPUS / train_file, CORPUS / dev_file
    train(ROOT / "configs" / config, tmp_path / "out", overrides=_overrides(tiny_checkpoint, train_file, dev_file))
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp.pipe_names[0] == "bert"
    doc = nlp("The food at the cafe in Paris was great .")
    if any("textcat" in name for name in nlp.pipe_names):
        assert doc.cats
    if "multilabel" in config:
        # tuned on the dev file before saving
        assert nlp.get_pipe("bert_textcat").cfg["thresholds"]


TRAINING_CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.cfg")
                          if "[training.optimizer.learn_rate]" in p.read_text(encoding="utf8"))


@pytest.mark.parametrize("config", TRAINING_CONFIGS)
def test_max_steps_shortens_the_whole_schedule(config):
    """`--training.max_steps 30` alone: the rate warms up and reaches 0 at step 30 (it
    stayed near 0 when the schedule kept its own 250-step warm-up and 20,000-step decay)."""
    from itertools import islice

    from spacy.util import load_config, registry

    assert len(TRAINING_CONFIGS) >= 6
    loaded = load_config(ROOT / "configs" / config, overrides={"training.max_steps": 30}, interpolate=True)
    schedule = loaded["training"]["optimizer"]["learn_rate"]
    initial = schedule["initial_rate"]
    rates = list(islice(registry.resolve({"lr": schedule})["lr"], 32))
    assert max(rates) == pytest.approx(initial), "the warm-up ends within the 30 steps"
    assert rates.index(max(rates)) <= 3, "the warm-up is a small fraction of the steps"
    assert rates[30] == 0.0 and rates[15] == pytest.approx(initial * 15 / 30, rel=0.1)


def test_schedule_refuses_an_unbounded_total():
    from spacy_bert_cls.schedules import warmup_linear_fraction_v1

    with pytest.raises(ValueError, match="training.max_steps"):
        warmup_linear_fraction_v1(5e-5, 0, 0.1)


def test_create_optimizer_on_an_uninterpolated_config_says_what_to_do():
    """spaCy's nlp.create_optimizer() (nlp.initialize() without sgd, nlp.resume_training())
    resolves [training.optimizer] without interpolating ${training.max_steps}: a clear error
    that says how to make the optimizer, and that way works."""
    from spacy.util import load_config, load_model_from_config, registry

    config = load_config(ROOT / "configs" / "bert_textcat.cfg", interpolate=False)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    with pytest.raises(ValueError, match=r"nlp.config.interpolate\(\)"):
        nlp.create_optimizer()
    optimizer = registry.resolve(nlp.config.interpolate()["training"])["optimizer"]
    assert nlp.resume_training(sgd=optimizer) is optimizer
