"""A pipeline saved by an earlier version (tests/fixtures/old_pipeline, made at 4835833 by
tests/fixtures/make_old_pipeline.py) loads with this one and predicts what it predicted then:
the same cats, entities and confidences, and its own span group key ("ents")."""
import json
from pathlib import Path

import pytest
import spacy

FIXTURE = Path(__file__).parent / "fixtures" / "old_pipeline"


def test_old_pipeline_loads_and_predicts_the_same(tmp_path):
    nlp = spacy.load(FIXTURE / "pipeline")
    expected = json.loads((FIXTURE / "expected.json").read_text(encoding="utf8"))
    assert nlp.pipe_names == ["bert", "bert_textcat", "bert_ner"]
    assert nlp.get_pipe("bert_ner").cfg["spans_key"] == "ents"
    for round_ in ("loaded", "saved again"):
        docs = list(nlp.pipe(e["text"] for e in expected))
        for doc, want in zip(docs, expected):
            assert doc.cats == pytest.approx(want["cats"], abs=1e-5), (round_, doc.text)
            got = [[e.start_char, e.end_char, e.label_, e._.confidence] for e in doc.ents]
            assert [g[:3] for g in got] == [w[:3] for w in want["ents"]], (round_, doc.text)
            assert [g[3] for g in got] == pytest.approx([w[3] for w in want["ents"]], abs=1e-4)
            assert doc.spans["ents"].attrs["scores"] == pytest.approx([w[3] for w in want["ents"]], abs=1e-4)
        nlp.to_disk(tmp_path / "again")
        nlp = spacy.load(tmp_path / "again")
