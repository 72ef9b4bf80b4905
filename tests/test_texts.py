"""data.texts: the texts of a data file in any of the package's formats, annotations ignored."""
import json

import pytest
import spacy

from spacy_bert_cls.data.texts import read_texts
from spacy_bert_cls.errors import DataError


@pytest.mark.parametrize("name,content,expected", [
    ("raw.jsonl", [{"text": "one text"}, {"text": "two"}], ["one text", "two"]),
    ("labelled.jsonl", [{"text": "good", "label": "POS"}, {"text": "bad", "label": "NEG"}], ["good", "bad"]),
    ("lines.txt", "first line\n\nsecond line\n", ["first line", "second line"]),
    ("tags.conll", "John\tB-PER\nruns\tO\n\nHi\tO\n", ["John runs", "Hi"]),
])
def test_texts_of_each_format(tmp_path, name, content, expected):
    path = tmp_path / name
    if isinstance(content, list):
        content = "".join(json.dumps(record) + "\n" for record in content)
    path.write_text(content, encoding="utf8")
    nlp = spacy.blank("en")
    assert read_texts(path, nlp) == expected
    assert read_texts(path, nlp, limit=1) == expected[:1]


@pytest.mark.parametrize("name,content,message", [
    ("missing.jsonl", None, "no such file"),
    ("empty.txt", "", "no text"),
    ("blank.jsonl", "\n  \n", "no text"),
])
def test_no_texts_is_a_data_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf8")
    with pytest.raises(DataError, match=message):
        read_texts(path, spacy.blank("en"))
