"""Fixtures of the stress suite (`pytest -m stress`): the pipelines under test and the
figures every test adds to (printed at the end, and written as JSON to $STRESS_FIGURES
when set: benchmarks/stress.py reads them from there)."""
import json
import os
import time
from pathlib import Path

import pytest
import torch

from . import harness

FIGURES: dict = {}


@pytest.fixture(scope="session")
def figures() -> dict:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("stress figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(value, sort_keys=True)}")
    target = os.environ.get("STRESS_FIGURES")
    if target:
        # Merged into what is there: benchmarks/stress.py --jobs runs several pytest
        # processes, one file each, but a file may also be reused on purpose.
        path = Path(target)
        merged = json.loads(path.read_text(encoding="utf8")) if path.is_file() else {}
        merged.update(FIGURES)
        path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf8")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # The suite's figures are for one torch thread (the machine has 2 cores, shared).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def real_vocab_checkpoint(tmp_path_factory) -> Path:
    """Tiny random weights with MiniLM's real tokenizer; the tests' tiny vocabulary without it."""
    folder = tmp_path_factory.mktemp("tiny_real_vocab")
    if harness.minilm_dir() is None:
        from ..conftest import write_tiny_checkpoint

        return write_tiny_checkpoint(folder)
    return harness.write_tiny_real_vocab_checkpoint(folder)


@pytest.fixture(scope="session")
def pipelines(real_vocab_checkpoint) -> dict:
    """Both pipelines, briefly trained: kind -> nlp."""
    started = time.perf_counter()
    built = {kind: harness.train_briefly(harness.build_pipeline(kind, real_vocab_checkpoint), real_vocab_checkpoint)
             for kind in ("heads", "spacy")}
    FIGURES["pipelines_trained_seconds"] = round(time.perf_counter() - started, 1)
    return built
