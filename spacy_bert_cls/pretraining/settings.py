"""A pretraining config's settings, checked: the Settings a run reads.

The [paths], [model], [tokenizer], [objective] and [training] sections: each section is a
pydantic model (strict types, no unknown keys), and the first problem found becomes a
one-line ValueError that names the config, the section and the key.

[training] takes spaCy's training config words (learn_rate, grad_clip, accumulate_gradient,
eval_frequency); the older names are still read, with a warning.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from thinc.api import Config

from ..pytorch.config import BertConfig

# The pretrain run's messages keep the logger name they had before train.py was split.
logger = logging.getLogger("spacy_bert_cls.pretraining.train")

# [training]: old name -> spaCy's training config word.
RENAMED = {"learning_rate": "learn_rate", "max_grad_norm": "grad_clip",
           "gradient_accumulation": "accumulate_gradient", "eval_every": "eval_frequency"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Paths(_Section):
    raw: Optional[Path] = Field(None, strict=False)
    dev: Optional[Path] = Field(None, strict=False)
    bert: Optional[Path] = Field(None, strict=False)
    vectors: Any = None
    init_tok2vec: Any = None


class _Tokenizer(_Section):
    vocab_size: int = Field(8000, ge=1)
    lowercase: bool = True
    min_frequency: int = Field(2, ge=1)
    train_limit: int = Field(0, ge=0)


class _Objective(_Section):
    max_length: int = Field(128, ge=8)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    whole_word_masking: bool = False
    nsp: bool = True
    short_seq_probability: float = Field(0.1, ge=0, le=1)


class _Training(_Section):
    seed: int = 0
    batch_size: int = Field(32, ge=1)
    accumulate_gradient: int = Field(1, ge=1)
    learn_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(0, ge=0)
    max_steps: int = Field(1000, ge=1)
    grad_clip: float = Field(1.0, ge=0)
    mixed_precision: Literal["auto", "none", "bf16", "fp16"] = "auto"
    log_every: int = Field(10, ge=1)
    eval_frequency: int = Field(500, ge=1)
    eval_batches: int = Field(50, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # True in configs that continue a checkpoint (pretrain_continue.cfg): [paths] bert is required.
    from_checkpoint: bool = False


SECTIONS = {"paths": _Paths, "tokenizer": _Tokenizer, "objective": _Objective, "training": _Training}
# The order in which values under their minimum of 1 are reported.
AT_LEAST_ONE = ("batch_size", "accumulate_gradient", "max_steps", "log_every", "eval_frequency",
                "eval_batches", "checkpoint_every", "keep_checkpoints", "vocab_size")
KINDS = {"int_type": "int", "float_type": "float", "bool_type": "bool", "string_type": "str",
         "literal_error": "str", "path_type": "Path"}


@dataclass
class Settings:
    """The [paths], [model], [tokenizer], [objective] and [training] sections, checked."""

    raw: Path
    dev: Optional[Path]
    bert: Optional[Path]
    model: Dict[str, Any]
    vocab_size: int
    lowercase: bool
    min_frequency: int
    tokenizer_train_limit: int
    max_length: int
    mlm_probability: float
    whole_word_masking: bool
    nsp: bool
    short_seq_probability: float
    seed: int
    batch_size: int
    accumulate_gradient: int
    learn_rate: float
    weight_decay: float
    warmup_steps: int
    max_steps: int
    grad_clip: float
    mixed_precision: str
    log_every: int
    eval_frequency: int
    eval_batches: int
    checkpoint_every: int
    keep_checkpoints: int
    from_checkpoint: bool = False

    @classmethod
    def from_config(cls, config: Config, source: str = "config") -> "Settings":
        """source: what to call the config in messages (its file name)."""
        sections = {name: dict(config.get(name, {})) for name in SECTIONS}
        written = _rename_deprecated(sections["training"], source)
        model = dict(config.get("model", {}))
        checked, errors = _validate(sections)
        problem = (_unknown_keys(errors, source) or _unknown_model_keys(model, source)
                   or _missing_raw(sections["paths"], source) or _invalid_value(errors, source, written)
                   or _positions(model, checked["objective"].max_length, source))
        if problem:
            raise ValueError(problem)
        paths, tokenizer = checked["paths"], checked["tokenizer"]
        return cls(raw=paths.raw, dev=paths.dev, bert=paths.bert, model=model,
                   vocab_size=tokenizer.vocab_size, lowercase=tokenizer.lowercase,
                   min_frequency=tokenizer.min_frequency, tokenizer_train_limit=tokenizer.train_limit,
                   **checked["objective"].model_dump(), **checked["training"].model_dump())


def _rename_deprecated(training: Dict[str, Any], source: str) -> Dict[str, str]:
    """Old [training] names -> their new names, in place, each with a warning; both an
    old name and its new one is an error. RETURNS new name -> the name the config used."""
    written = {}
    for old, new in RENAMED.items():
        if old not in training:
            continue
        if new in training:
            raise ValueError(f"{source}: [training] sets both {old} and {new}, the same setting ({old} is "
                             f"its old name): keep {new} only")
        logger.warning("%s: [training] %s is deprecated: call it %s (spaCy's training config word); "
                       "the old name will stop working in a later version", source, old, new)
        training[new] = training.pop(old)
        written[new] = old
    return written


def _validate(sections: Dict[str, Dict[str, Any]]) -> Tuple[Dict[str, BaseModel], Dict[str, List[dict]]]:
    checked, errors = {}, {}
    for name, model in SECTIONS.items():
        try:
            checked[name] = model.model_validate(sections[name])
        except ValidationError as err:
            errors[name] = err.errors()
    return checked, errors


def _unknown_keys(errors: Dict[str, List[dict]], source: str) -> Optional[str]:
    for section in SECTIONS:
        unknown = sorted(e["loc"][0] for e in errors.get(section, []) if e["type"] == "extra_forbidden")
        if unknown:
            return f"{source}: unknown setting(s) in [{section}]: {', '.join(unknown)}"
    return None


def _unknown_model_keys(model: Dict[str, Any], source: str) -> Optional[str]:
    unknown = set(model) - set(BertConfig.__dataclass_fields__) - {"vocab_size"}
    if model and unknown:
        return f"{source}: unknown setting(s) in [model]: {', '.join(sorted(unknown))}"
    return None


def _positions(model: Dict[str, Any], max_length: int, source: str) -> Optional[str]:
    """[objective] max_length over [model] max_position_embeddings (a new model would need
    the positions it does not have; it used to get them, silently)."""
    positions = model.get("max_position_embeddings")
    if isinstance(positions, int) and max_length > positions:
        return (f"{source}: [objective] max_length {max_length} is over [model] max_position_embeddings "
                f"{positions}: set max_position_embeddings to at least {max_length} too, or a shorter max_length")
    return None


def _missing_raw(paths: Dict[str, Any], source: str) -> Optional[str]:
    if paths.get("raw") is None:
        return f"{source}: [paths] raw is not set: pass --paths.raw FILE (.txt or .jsonl)"
    return None


def _invalid_value(errors: Dict[str, List[dict]], source: str, written: Dict[str, str]) -> Optional[str]:
    """The first wrong value: a wrong type (in the sections' order), then a count under 1,
    then a mixed_precision that is none of its choices."""
    found = []
    for position, (section, error) in enumerate((s, e) for s in SECTIONS for e in errors.get(s, [])):
        key, value, kind = error["loc"][0], error["input"], error["type"]
        name = written.get(key, key) if section == "training" else key
        if kind == "greater_than_equal" and key in AT_LEAST_ONE:
            found.append((1, AT_LEAST_ONE.index(key), f"{source}: {name} must be at least 1, got {value}"))
        elif kind == "literal_error" and isinstance(value, str):
            found.append((2, 0, f"{source}: [training] {name} must be auto, none, bf16 or fp16, got {value!r}"))
        elif kind in KINDS:
            found.append((0, position, f"{source}: [{section}] {name} must be {KINDS[kind]}, got {value!r}"))
        else:
            found.append((0, position, f"{source}: [{section}] {name}: {error['msg']}, got {value!r}"))
    return min(found)[2] if found else None
