"""NSP pairs: random second segments come from another document wherever it is in the
file (the first document too), half of the pairs; a file too small to pair stops the run."""
import collections
import random
from pathlib import Path

import pytest
from thinc.api import Config

from spacy_bert_cls.pretraining import train as train_module
from spacy_bert_cls.pretraining.instances import IS_NEXT, RANDOM_NEXT, InstanceStream
from spacy_bert_cls.pretraining.train import pretrain
from spacy_bert_cls.tokenization import load_piece_tokenizer

ROOT = Path(__file__).resolve().parents[2]
# Each document writes only its own words (whole pieces of the tiny vocabulary), so every
# piece tells which document it came from.
DOC_WORDS = [["paris", "london", "berlin"], ["john", "mary", "acme"], ["movie", "film", "book"],
             ["food", "service", "phone"], ["good", "bad", "great"], ["love", "hate", "awful"],
             ["visited", "lives", "said"]]


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return load_piece_tokenizer(tiny_checkpoint)


def _write_docs(path: Path, n_docs: int, paragraphs: int = 12, seed: int = 0) -> Path:
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        words = DOC_WORDS[d]
        docs.append("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 7)))
                              for _ in range(paragraphs)))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf8")
    return path


def _doc_of(tokenizer, ids):
    """The document (index into DOC_WORDS) all these pieces come from; fails on a mix."""
    by_id = {tokenizer.tokenizer.token_to_id(w): d for d, words in enumerate(DOC_WORDS) for w in words}
    docs = {by_id[i] for i in ids}
    assert len(docs) == 1, f"a segment mixes documents {docs}"
    return docs.pop()


def _pairs(tokenizer, instances):
    """(label, document of A, document of B) for each instance."""
    out = []
    for x in instances:
        first_b = x.type_ids.index(1)
        a, b = x.ids[1:first_b - 1], x.ids[first_b:-1]
        out.append((x.nsp_label, _doc_of(tokenizer, a), _doc_of(tokenizer, b)))
    return out


def test_a_small_file_gives_balanced_pairs_from_other_documents(tokenizer, tmp_path):
    raw = _write_docs(tmp_path / "raw.txt", 4)
    stream = InstanceStream(raw, tokenizer, max_length=16, nsp=True, seed=0, epochs=12)
    pairs = _pairs(tokenizer, stream)
    assert len(pairs) >= 200
    share = sum(label == RANDOM_NEXT for label, _, _ in pairs) / len(pairs)
    assert 0.35 < share < 0.65, share
    for label, a, b in pairs:
        assert (a == b) if label == IS_NEXT else (a != b), (label, a, b)
    # Every document, the first included, gets random pairs, with B from every other one.
    random_b = collections.defaultdict(set)
    for label, a, b in pairs:
        if label == RANDOM_NEXT:
            random_b[a].add(b)
    assert {a: sorted(b) for a, b in random_b.items()} == {a: [b for b in range(4) if b != a] for a in range(4)}


def test_the_first_document_gets_random_pairs_in_the_first_epoch(tokenizer, tmp_path):
    raw = _write_docs(tmp_path / "raw.txt", 2, paragraphs=40)
    pairs = _pairs(tokenizer, InstanceStream(raw, tokenizer, max_length=16, nsp=True, seed=0, epochs=1))
    first = [label for label, a, _ in pairs if a == 0]
    assert len(first) >= 10 and 0.25 < first.count(RANDOM_NEXT) / len(first) < 0.75, first


def test_blocks_pair_across_the_block_boundary_and_the_tail(tokenizer, tmp_path):
    # Blocks of 3 documents: 3 + 3 + 1; the last one is not left without partners.
    raw = _write_docs(tmp_path / "raw.txt", 7)
    stream = InstanceStream(raw, tokenizer, max_length=16, nsp=True, seed=1, epochs=3, block_documents=3)
    pairs = _pairs(tokenizer, stream)
    for label, a, b in pairs:
        assert (a == b) if label == IS_NEXT else (a != b)
    assert any(label == RANDOM_NEXT and a == 6 for label, a, _ in pairs)
    again = _pairs(tokenizer, InstanceStream(raw, tokenizer, max_length=16, nsp=True, seed=1, epochs=3,
                                             block_documents=3))
    assert again == pairs


def test_shards_pair_only_their_own_documents(tokenizer, tmp_path):
    raw = _write_docs(tmp_path / "raw.txt", 6)
    for rank in (0, 1):
        stream = InstanceStream(raw, tokenizer, max_length=16, nsp=True, seed=0, epochs=2, rank=rank, world_size=2)
        pairs = _pairs(tokenizer, stream)
        assert {a for _, a, _ in pairs} | {b for _, _, b in pairs} == {d for d in range(6) if d % 2 == rank}
        assert any(label == RANDOM_NEXT for label, _, _ in pairs)


def _config(raw: Path, dev=None, **objective) -> Config:
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
    config["paths"].update({"raw": str(raw), "dev": str(dev) if dev else None})
    config["model"].update({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 64, "max_position_embeddings": 64})
    config["tokenizer"].update({"vocab_size": 200, "min_frequency": 1})
    config["objective"].update({"max_length": 16, **objective})
    config["training"].update({"max_steps": 1, "batch_size": 2, "warmup_steps": 0, "log_every": 1,
                               "eval_frequency": 1, "eval_batches": 1, "checkpoint_every": 1})
    return config


def test_one_document_with_nsp_stops_before_writing(tmp_path):
    raw = _write_docs(tmp_path / "one.txt", 1)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        pretrain(_config(raw), out)
    message = str(err.value)
    assert str(raw) in message and "1 document" in message
    assert "blank lines" in message and "--objective.nsp false" in message
    assert not out.exists()


def test_one_document_dev_file_with_nsp_stops_before_writing(tmp_path):
    raw = _write_docs(tmp_path / "raw.txt", 3)
    dev = _write_docs(tmp_path / "dev.jsonl", 0)
    dev.write_text('{"text": "paris london"}\n', encoding="utf8")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"dev\.jsonl.*1 document.*one per line"):
        pretrain(_config(raw, dev), out)
    assert not out.exists()


def test_each_process_needs_two_documents(tmp_path, monkeypatch):
    raw = _write_docs(tmp_path / "raw.txt", 3)
    monkeypatch.setattr(train_module, "init_distributed", lambda use_cuda: train_module.Distributed(0, 2, 0))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"3 documents.*at least 4"):
        pretrain(_config(raw), out)
    assert not out.exists()


def test_one_document_without_nsp_trains_and_few_documents_warn(tmp_path, caplog):
    raw = _write_docs(tmp_path / "one.txt", 1)
    assert (pretrain(_config(raw, nsp=False), tmp_path / "mlm") / "model.safetensors").is_file()
    few = _write_docs(tmp_path / "few.txt", 3)
    with caplog.at_level("WARNING"):
        pretrain(_config(few), tmp_path / "nsp")
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert f"{few} has only 3 documents" in warned, warned
