"""A `spacy train` config that fine-tunes an imported pipeline further (import-hf --train-config)."""
from pathlib import Path
from typing import Union


def write_training_config(pipeline_dir: Union[str, Path], output: Union[str, Path]) -> Path:
    """A `spacy train` config that fine-tunes an imported pipeline further.

    Its components are sourced from `pipeline_dir` (weights, labels and tokenizer as they
    are); data come from --paths.train / --paths.dev (.spacy, JSONL or CoNLL through
    spacy-bert-cls.Corpus.v1); the optimiser is that of configs/bert_*.cfg.
    """
    from thinc.api import Config

    from ..checkpoint.io import atomic_path

    pipeline_dir = Path(pipeline_dir)
    config = Config().from_disk(pipeline_dir / "config.cfg", interpolate=False)
    for name in config["nlp"]["pipeline"]:
        config["components"][name] = {"source": str(pipeline_dir.resolve())}
    config["initialize"]["components"] = {}
    training = Config().from_str(_TRAINING, interpolate=False)
    config["paths"].update({"train": None, "dev": None})
    config["corpora"] = training["corpora"]
    config["training"].update(training["training"])
    if "bert_ner" in config["nlp"]["pipeline"]:
        config["training"]["score_weights"] = {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0}
    else:
        config["training"]["score_weights"] = {"cats_score": 1.0}
    with atomic_path(Path(output)) as tmp:
        config.to_disk(tmp, interpolate=False)
    return Path(output)


# What write_training_config sets (the training settings of configs/bert_*.cfg).
_TRAINING = """
[corpora]

[corpora.train]
@readers = "spacy-bert-cls.Corpus.v1"
path = ${paths.train}

[corpora.dev]
@readers = "spacy-bert-cls.Corpus.v1"
path = ${paths.dev}

[training]
accumulate_gradient = 3
dropout = 0.1
patience = 1600
max_steps = 20000
eval_frequency = 200

[training.optimizer]
@optimizers = "Adam.v1"
beta1 = 0.9
beta2 = 0.999
L2_is_weight_decay = true
L2 = 0.01
grad_clip = 1.0
use_averages = false
eps = 1e-08

[training.optimizer.learn_rate]
# Warm-up over the first 1.25% of the steps, then a linear decay to 0 at training.max_steps:
# --training.max_steps N shortens the whole schedule.
@schedules = "spacy-bert-cls.warmup_linear.v1"
warmup_fraction = 0.0125
total_steps = ${training.max_steps}
initial_rate = 5e-05

[training.batcher]
@batchers = "spacy.batch_by_padded.v1"
discard_oversize = false
size = 2000
buffer = 256
get_length = null
"""
