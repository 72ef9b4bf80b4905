"""Saving a pipeline so that a killed process never leaves a broken one behind.

spaCy's `nlp.to_disk(path)` writes file after file into `path`: killed half-way, it leaves
a folder that mixes the old pipeline and the new one, or that no longer loads. `save_pipeline`
writes into a temporary folder beside `path` and swaps it in whole (checkpoint.io.atomic_dir),
so `path` holds the previous pipeline or the new one, complete, at every moment. Our commands
that save pipelines use it; in `spacy train`, the callback `spacy-bert-cls.atomic_save.v1`
makes model-last's saves atomic:

    [training.before_to_disk]
    @callbacks = "spacy-bert-cls.atomic_save.v1"

(model-best is spaCy's copy of model-last, made with shutil.copytree after the save; a
kill during that copy leaves model-best incomplete, while model-last stays whole.)

The saved config.cfg keeps no absolute path of the machine (`portable_config`).
"""
import functools
import os
import re
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Union

from spacy.language import Language
from spacy.util import SimpleFrozenList

from .checkpoint.io import atomic_dir


def save_pipeline(nlp: Language, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()) -> Path:
    """`nlp.to_disk(path)`, atomically: the previous pipeline at `path` stays whole until the
    new one is complete. The saved config.cfg names no absolute path of this machine (see
    `portable_config`), so `spacy package` output does not either. RETURNS the path."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        _plain_to_disk(nlp)(nlp, tmp, exclude=exclude)
        if (tmp / "config.cfg").is_file():
            portable_config(tmp / "config.cfg")
    return path


# The sections that only training and initialization read: spacy.load never resolves them.
TRAINING_SECTIONS = ("paths", "corpora", "training", "pretraining", "initialize")


def portable_config(path: Union[str, Path]) -> List[str]:
    """Set every absolute path in the training-time sections of a saved config.cfg (the
    training data, the checkpoint folder the encoder was initialized from) to null: they
    name folders of the machine that trained the pipeline, and loading never reads them.

    RETURNS (List[str]): the settings that were cleared, as "section.key".
    """
    from thinc.api import Config

    path = Path(path)
    config = Config().from_disk(path, interpolate=False)
    cleared: List[str] = []

    def scrub(node: dict, where: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                scrub(value, f"{where}.{key}")
            elif isinstance(value, str) and _is_absolute(value):
                node[key] = None
                cleared.append(f"{where}.{key}"[1:])

    for section in TRAINING_SECTIONS:
        if isinstance(config.get(section), dict):
            scrub(config[section], f".{section}")
    if cleared:
        config.to_disk(path, interpolate=False)
    return cleared


def _is_absolute(value: str) -> bool:
    return (os.path.isabs(value) or value.startswith("~") or bool(re.match(r"^[A-Za-z]:[\\/]", value))
            or value.startswith("\\\\"))


def _plain_to_disk(nlp: Language) -> Callable:
    # The class's own to_disk, skipping the atomic subclass made below.
    cls = type(nlp)
    return (cls.__mro__[1] if cls.__dict__.get("_atomic_save") else cls).to_disk


@functools.cache
def _atomic_class(cls: type) -> type:
    # One subclass per pipeline class, made once (cached): each call to `type` would make a
    # new class, and atomic views of one pipeline class should share one.
    if cls.__dict__.get("_atomic_save"):
        return cls

    def to_disk(self, path, *, exclude=SimpleFrozenList()):
        save_pipeline(self, path, exclude=exclude)

    return type(f"AtomicSave{cls.__name__}", (cls,),
                {"to_disk": to_disk, "_atomic_save": True, "__module__": __name__})


def atomic_view(nlp: Language) -> Language:
    """The same pipeline (one shared state: no copy), whose `to_disk` is `save_pipeline`."""
    view = object.__new__(_atomic_class(type(nlp)))
    view.__dict__ = nlp.__dict__
    return view


class AtomicSave:
    """[training.before_to_disk] callback: spaCy's loop then saves model-last atomically."""

    def __init__(self, before: Optional[Callable[[Language], Language]] = None) -> None:
        self.before = before

    def __call__(self, nlp: Language) -> Language:
        if self.before is not None:
            nlp = self.before(nlp)
        return atomic_view(nlp)


def make_atomic_save_v1(before: Optional[Callable[[Language], Language]] = None) -> AtomicSave:
    """spacy-bert-cls.atomic_save.v1: save model-last in `spacy train` atomically.

    before (Optional[Callable[[Language], Language]]): another before_to_disk callback to
        run first (for instance spacy-bert-cls.tune_thresholds.v1), as a sub-block
        [training.before_to_disk.before].
    """
    return AtomicSave(before)
