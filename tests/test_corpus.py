"""Tests of the corpus reader `spacy-bert-cls.Corpus.v1` and its helpers."""
import json
import pickle
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_bert_cls.data.conll import conll_to_example, read_conll
from spacy_bert_cls.data.jsonl import collect_textcat_labels, read_textcat_jsonl
from spacy_bert_cls.data.readers import BertClsCorpus, create_corpus_reader_v1
from spacy_bert_cls.errors import DataError
from spacy_bert_cls.tags import tags_to_biluo, tags_to_spans

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

CONLL_TEXT = (
    "-DOCSTART-\tO\n"
    "\n"
    "Empire\tB-location\n"
    "State\tI-location\n"
    "Building\tI-location\n"
    "=\tO\n"
    "ESB\tB-location\n"
    ".\tO\n"
    "\t\n"
    "@paul\tO\n"
    "likes\tO\n"
    "&lt;3\tO\n"
    "\U0001F602\tO\n"
    "http://t.co/x\tO\n"
    "John\tB-person\n"
    "Smith\tI-person\n"
    "\n"
    "\n"
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def write_jsonl(tmp_path: Path, name: str, records) -> Path:
    return write(tmp_path, name, "".join(json.dumps(r) + "\n" for r in records))


def ents_of(example: Example):
    return [(ent.text, ent.label_) for ent in example.reference.ents]


def raises_data_error(path: Path, line, *fragments: str):
    """Context: expect a DataError for this path and line whose message has the fragments."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(DataError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            err = self.info.value
            message = str(err)
            assert err.path == path
            assert err.line == line
            assert path.name in message
            if line is not None:
                assert f"{path.name}:{line}:" in message
            for fragment in fragments:
                assert fragment in message, message
            return suppressed

    return _Check()


# Text classification JSONL


def test_jsonl_exclusive_cats_give_every_label_a_value(tmp_path, nlp):
    path = write_jsonl(
        tmp_path,
        "train.jsonl",
        [
            {"text": "good film", "label": "positive", "id": 1},
            {"text": "bad film", "label": "negative"},
            {"text": "fine film", "label": "neutral"},
        ],
    )
    examples = list(create_corpus_reader_v1(path)(nlp))
    assert [eg.reference.text for eg in examples] == ["good film", "bad film", "fine film"]
    assert examples[0].reference.cats == {"negative": 0.0, "neutral": 0.0, "positive": 1.0}
    assert examples[1].reference.cats == {"negative": 1.0, "neutral": 0.0, "positive": 0.0}
    assert [t.text for t in examples[0].predicted] == ["good", "film"]


def test_jsonl_multilabel_with_empty_list_and_blank_lines(tmp_path, nlp):
    path = write(
        tmp_path,
        "multi.jsonl",
        '{"text": "a", "labels": ["joy", "love"]}\n'
        "\n"
        '{"text": "b", "labels": []}\n'
        "   \n"
        '{"text": "c", "labels": ["anger"]}\n',
    )
    cats = [eg.reference.cats for eg in create_corpus_reader_v1(path)(nlp)]
    assert cats == [
        {"anger": 0.0, "joy": 1.0, "love": 1.0},
        {"anger": 0.0, "joy": 0.0, "love": 0.0},
        {"anger": 1.0, "joy": 0.0, "love": 0.0},
    ]


def test_jsonl_given_labels_and_numeric_labels(tmp_path, nlp):
    path = write_jsonl(tmp_path, "num.jsonl", [{"text": "x", "label": 1}, {"text": "y", "label": 0}])
    reader = create_corpus_reader_v1(path, labels=[0, 1, 2])
    assert [eg.reference.cats for eg in reader(nlp)] == [
        {"0": 0.0, "1": 1.0, "2": 0.0},
        {"0": 1.0, "1": 0.0, "2": 0.0},
    ]
    assert list(read_textcat_jsonl(path)) == [("x", {"0": 0.0, "1": 1.0}), ("y", {"0": 1.0, "1": 0.0})]
    assert collect_textcat_labels(path) == ["0", "1"]


def test_jsonl_label_set_is_collected_once_and_cached(tmp_path, nlp):
    path = write_jsonl(tmp_path, "c.jsonl", [{"text": "x", "label": "b"}, {"text": "y", "label": "a"}])
    reader = create_corpus_reader_v1(path)
    assert len(list(reader(nlp))) == 2
    assert reader._collected_labels == ["a", "b"]
    # A later epoch keeps the collected set, so a new label is then an error.
    with path.open("a", encoding="utf8") as file_:
        file_.write(json.dumps({"text": "z", "label": "c"}) + "\n")
    with raises_data_error(path, 3, "'c'", "not in the given labels"):
        list(reader(nlp))


def test_jsonl_byte_order_mark_and_crlf(tmp_path, nlp):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a", "label": "x"}\r\n{"text": "b", "label": "y"}\r\n')
    assert [text for text, _ in read_textcat_jsonl(path)] == ["a", "b"]


@pytest.mark.parametrize(
    "lines,line,fragments",
    [
        (['{"text": "a", "label": "x"}', '{"text": "b", "label": '], 2, ["invalid JSON"]),
        (['["a", "x"]'], 1, ["expected a JSON object", "list"]),
        (['{"label": "x"}'], 1, ['missing "text"']),
        (['{"text": 3, "label": "x"}'], 1, ['"text" must be a string', "number"]),
        (['{"text": "", "label": "x"}'], 1, ['"text" is empty']),
        (['{"text": "a", "label": "x"}', '{"text": "b", "id": 2}'], 2, ["missing label"]),
        (['{"text": "a", "labels": "x"}'], 1, ['"labels" must be a list', "string"]),
        (['{"text": "a", "labels": ["x", null]}'], 1, ['each of "labels"', "null"]),
        (['{"text": "a", "label": true}'], 1, ['"label" must be a string or an integer']),
        (['{"text": "a", "label": ""}'], 1, ["empty string"]),
        (['{"text": "a", "label": "x", "labels": ["x"]}'], 1, ['both "label" and "labels"']),
        (
            ['{"text": "a", "label": "x"}', "", '{"text": "b", "labels": ["x"]}'],
            3,
            ["'labels'", "line 1 has 'label'"],
        ),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, nlp, lines, line, fragments):
    path = write(tmp_path, "bad.jsonl", "\n".join(lines) + "\n")
    with raises_data_error(path, line, *fragments):
        list(create_corpus_reader_v1(path)(nlp))


def test_jsonl_label_not_in_given_labels(tmp_path, nlp):
    path = write_jsonl(tmp_path, "l.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "z"}])
    with raises_data_error(path, 2, "label 'z' is not in the given labels", "'x', 'y'"):
        list(create_corpus_reader_v1(path, labels=["x", "y"])(nlp))


def test_jsonl_invalid_utf8_names_line(tmp_path, nlp):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "x"}\n{"text": "caf\xe9", "label": "x"}\n')
    with raises_data_error(path, 2, "not valid UTF-8", "0xe9"):
        list(create_corpus_reader_v1(path)(nlp))


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_jsonl_empty_file(tmp_path, nlp, text):
    path = write(tmp_path, "empty.jsonl", text)
    with raises_data_error(path, None, "no examples"):
        list(create_corpus_reader_v1(path)(nlp))


# CoNLL / IOB NER


def test_conll_sentences_words_and_ents(tmp_path, nlp):
    path = write(tmp_path, "ner.conll", CONLL_TEXT)
    examples = list(create_corpus_reader_v1(path)(nlp))
    assert len(examples) == 2
    first, second = examples
    assert [t.text for t in first.predicted] == ["Empire", "State", "Building", "=", "ESB", "."]
    assert ents_of(first) == [("Empire State Building", "location"), ("ESB", "location")]
    assert [t.ent_iob_ for t in first.reference] == ["B", "I", "I", "O", "B", "O"]
    assert [t.text for t in second.predicted] == [
        "@paul", "likes", "&lt;3", "\U0001F602", "http://t.co/x", "John", "Smith",
    ]
    assert ents_of(second) == [("John Smith", "person")]
    for eg in examples:
        assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
        assert eg.predicted.text == eg.reference.text
        assert not eg.predicted.ents


def test_conll_space_separated_multi_column_no_final_blank(tmp_path):
    path = write(
        tmp_path,
        "c03.iob",
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\n"
        "German JJ B-NP I-MISC\n\nPeter NNP B-NP I-PER",
    )
    assert list(read_conll(path)) == [
        (["EU", "rejects", "German"], ["I-ORG", "O", "I-MISC"]),
        (["Peter"], ["I-PER"]),
    ]


@pytest.mark.parametrize(
    "tags,expected",
    [
        # IOB2
        (["B-X", "I-X", "O", "B-X", "B-X", "I-Y"], [(0, 2, "X"), (3, 4, "X"), (4, 5, "X"), (5, 6, "Y")]),
        # IOB1: I- starts an entity, B- only between two entities of one type
        (["I-X", "I-X", "B-X", "O", "I-Y"], [(0, 2, "X"), (2, 3, "X"), (4, 5, "Y")]),
        # BILUO
        (["U-X", "B-Y", "I-Y", "L-Y", "U-Y"], [(0, 1, "X"), (1, 4, "Y"), (4, 5, "Y")]),
        # IOBES
        (["S-X", "B-Y", "I-Y", "E-Y", "S-Y", "O"], [(0, 1, "X"), (1, 4, "Y"), (4, 5, "Y")]),
        (["O", "O"], []),
    ],
)
def test_tags_to_spans_all_schemes(tags, expected):
    assert tags_to_spans(tags) == expected


def test_tags_to_biluo():
    assert tags_to_biluo(["I-X", "I-X", "O", "B-creative-work", "S-Y"]) == [
        "B-X", "L-X", "O", "U-creative-work", "U-Y",
    ]


def test_conll_to_example_iobes(nlp):
    eg = conll_to_example(nlp, ["New", "York", "is", "big"], ["B-LOC", "E-LOC", "O", "S-ADJ"])
    assert ents_of(eg) == [("New York", "LOC"), ("big", "ADJ")]
    assert eg.reference.text == "New York is big"
    with pytest.raises(ValueError):
        conll_to_example(nlp, ["a"], ["B-X", "O"])


@pytest.mark.parametrize(
    "text,line,fragments",
    [
        ("a\tO\nb\n", 2, ["only one column", "'b'"]),
        ("a\tO\n\tB-X\n", 2, ["only one column"]),
        ("a\tO\n\nb\tB-X\nc\tPER\n", 4, ["invalid NER tag 'PER'"]),
        ("a\tB-\n", 1, ["invalid NER tag 'B-'"]),
        ("a\tX-PER\n", 1, ["invalid NER tag 'X-PER'"]),
        ("a\to\n", 1, ["invalid NER tag 'o'"]),
    ],
)
def test_conll_errors_name_file_and_line(tmp_path, nlp, text, line, fragments):
    path = write(tmp_path, "bad.conll", text)
    with raises_data_error(path, line, *fragments):
        list(create_corpus_reader_v1(path)(nlp))


def test_conll_invalid_utf8_names_line(tmp_path, nlp):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"a\tO\n\nb\tO\nM\xfcller\tB-PER\n")
    with raises_data_error(path, 4, "not valid UTF-8"):
        list(create_corpus_reader_v1(path)(nlp))


@pytest.mark.parametrize("text", ["", "\n \n\t\n", "-DOCSTART-\tO\n\n"])
def test_conll_empty_file(tmp_path, nlp, text):
    path = write(tmp_path, "empty.bio", text)
    with raises_data_error(path, None, "no examples"):
        list(create_corpus_reader_v1(path)(nlp))


# .spacy (DocBin)


def make_docbin(nlp, texts_and_ents):
    doc_bin = DocBin()
    for words, ents in texts_and_ents:
        doc = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, start, end, label=label) for start, end, label in ents]
        doc.cats = {"A": 1.0, "B": 0.0}
        doc_bin.add(doc)
    return doc_bin


def test_docbin_round_trip_file_and_folder(tmp_path, nlp):
    data = [(["Ada", "Lovelace", "wrote"], [(0, 2, "PER")]), (["in", "London"], [(1, 2, "LOC")])]
    folder = tmp_path / "corpus"
    folder.mkdir()
    path = folder / "train.spacy"
    make_docbin(nlp, data).to_disk(path)
    examples = list(create_corpus_reader_v1(path)(nlp))
    assert [ents_of(eg) for eg in examples] == [[("Ada Lovelace", "PER")], [("London", "LOC")]]
    assert examples[0].reference.cats == {"A": 1.0, "B": 0.0}
    assert len(list(create_corpus_reader_v1(folder)(nlp))) == 2
    # max_length is spaCy's: docs of max_length tokens or more have no sentences here, so go.
    assert [len(eg.reference) for eg in create_corpus_reader_v1(path, max_length=3)(nlp)] == [2]


def test_docbin_limit_counts_over_a_folder(tmp_path, nlp):
    for name in ("a.spacy", "b.spacy"):
        make_docbin(nlp, [(["x"], []), (["y"], [])]).to_disk(tmp_path / name)
    assert len(list(create_corpus_reader_v1(tmp_path, limit=3)(nlp))) == 3


def test_docbin_errors(tmp_path, nlp):
    garbage = tmp_path / "garbage.spacy"
    garbage.write_bytes(b"not a docbin")
    with raises_data_error(garbage, None, "not a valid .spacy (DocBin) file"):
        list(create_corpus_reader_v1(garbage)(nlp))
    empty = tmp_path / "empty.spacy"
    DocBin().to_disk(empty)
    with raises_data_error(empty, None, "no examples"):
        list(create_corpus_reader_v1(empty)(nlp))
    with raises_data_error(tmp_path, None, "only the 'spacy' format"):
        create_corpus_reader_v1(tmp_path, format="jsonl")
    other = write(tmp_path, "docs.bin", "")
    with raises_data_error(other, None, "format 'spacy' reads only files named *.spacy"):
        create_corpus_reader_v1(other, format="spacy")


# Reader settings


def test_format_forced_and_unknown_extension(tmp_path, nlp):
    path = write(tmp_path, "ner.txt", "a\tB-X\n")
    with raises_data_error(path, None, "'.txt'", ".jsonl", ".conll", "`format`"):
        create_corpus_reader_v1(path)
    assert ents_of(next(iter(create_corpus_reader_v1(path, format="conll")(nlp)))) == [("a", "X")]
    with pytest.raises(ValueError, match="Unknown corpus format 'csv'"):
        create_corpus_reader_v1(path, format="csv")


def test_missing_file_and_no_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with raises_data_error(missing, None, "file not found"):
        create_corpus_reader_v1(missing)
    with raises_data_error(missing, None, "file not found"):
        list(read_textcat_jsonl(missing))
    with pytest.raises(ValueError, match="Corpus path can't be None"):
        create_corpus_reader_v1(None)


def test_limit_and_pickle(tmp_path, nlp):
    jsonl = write_jsonl(tmp_path, "t.jsonl", [{"text": f"t{i}", "label": str(i % 3)} for i in range(10)])
    conll = write(tmp_path, "n.conll", CONLL_TEXT)
    reader = create_corpus_reader_v1(jsonl, limit=4)
    examples = list(reader(nlp))
    assert len(examples) == 4
    # The label set comes from the whole file, not only the first `limit` records.
    assert examples[0].reference.cats == {"0": 1.0, "1": 0.0, "2": 0.0}
    assert len(list(create_corpus_reader_v1(conll, limit=1)(nlp))) == 1
    restored = pickle.loads(pickle.dumps(reader))
    assert isinstance(restored, BertClsCorpus)
    assert [eg.reference.text for eg in restored(nlp)] == [eg.reference.text for eg in examples]
    assert pickle.loads(pickle.dumps(create_corpus_reader_v1(conll))).format == "conll"


def test_reader_is_called_once_per_epoch(tmp_path, nlp):
    path = write(tmp_path, "n.conll", CONLL_TEXT)
    reader = create_corpus_reader_v1(path)
    first = [ents_of(eg) for eg in reader(nlp)]
    assert first == [ents_of(eg) for eg in reader(nlp)]


# Real data (read in place)


def dataset(relative: str) -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets folder {DATASETS} is absent")
    path = DATASETS / relative
    if not path.exists():
        pytest.skip(f"dataset file {path} is absent")
    return path


def test_real_wnut17_train(nlp):
    path = dataset("wnut17/wnut17train.conll")
    sentences = list(read_conll(path))
    assert len(sentences) == 3394
    assert sum(len(words) for words, _ in sentences) == 62730
    examples = [conll_to_example(nlp, words, tags) for words, tags in sentences]
    counts = {}
    for eg in examples:
        for ent in eg.reference.ents:
            counts[ent.label_] = counts.get(ent.label_, 0) + 1
    # SOURCE.md: entity counts of the train split.
    assert counts == {
        "person": 660, "location": 548, "corporation": 221,
        "group": 264, "product": 142, "creative-work": 140,
    }
    assert ents_of(examples[0])[0] == ("Empire State Building", "location")


def test_real_rotten_tomatoes_validation(nlp):
    path = dataset("rotten_tomatoes/validation.jsonl")
    examples = list(create_corpus_reader_v1(path)(nlp))
    assert len(examples) == 1066
    positives = sum(eg.reference.cats["positive"] for eg in examples)
    assert positives == 533
    assert all(sum(eg.reference.cats.values()) == 1.0 for eg in examples)
    assert set(examples[0].reference.cats) == {"negative", "positive"}


def test_merged_corpus_interleaves_and_keeps_annotations_apart(tmp_path):
    from spacy_bert_cls.data.merged import create_merged_corpus_reader_v1

    cats = tmp_path / "c.jsonl"
    cats.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n{"text": "ok", "label": "pos"}\n')
    ner = tmp_path / "n.conll"
    ner.write_text("John\tB-PER\nsaid\tO\n\nHi\tO\n")
    reader = create_merged_corpus_reader_v1({"textcat": cats, "ner": ner, "none": None})
    examples = list(reader(spacy.blank("en")))
    assert [eg.reference.text for eg in examples] == ["good", "John said", "bad", "Hi", "ok"]
    assert examples[0].reference.cats and not examples[0].reference.has_annotation("ENT_IOB")
    assert not examples[1].reference.cats and examples[1].reference.has_annotation("ENT_IOB")
    assert len(list(create_merged_corpus_reader_v1({"a": cats, "b": ner}, limit=3)(spacy.blank("en")))) == 3


def test_merged_corpus_balance_repeats_the_rarer_kind(tmp_path):
    import random

    from spacy_bert_cls.convert import convert
    from spacy_bert_cls.data.merged import create_merged_corpus_reader_v1

    cats = tmp_path / "c.jsonl"
    cats.write_text("".join(f'{{"text": "t{i}", "label": "pos"}}\n' for i in range(5)))
    ner = tmp_path / "n.conll"
    ner.write_text("John\tB-PER\n\nHi\tO\n")
    nlp = spacy.blank("en")
    random.seed(0)
    examples = list(create_merged_corpus_reader_v1({"c": cats, "n": ner}, balance=True)(nlp))
    texts = [eg.reference.text for eg in examples]
    # Five of each kind, in turn: the NER file twice, then one of its two at random.
    assert texts[0::2] == ["t0", "t1", "t2", "t3", "t4"]
    assert texts[1:4:2] == ["John", "Hi"] and texts[5:8:2] == ["John", "Hi"]
    assert texts[9] in ("John", "Hi")
    # A repeat is a copy, with its annotation.
    assert examples[5] is not examples[1] and examples[5].reference is not examples[1].reference
    assert [t.ent_iob_ for t in examples[5].reference] == ["B"]
    # Unbalanced, each example once.
    texts = [eg.reference.text for eg in create_merged_corpus_reader_v1({"c": cats, "n": ner})(nlp)]
    assert texts == ["t0", "John", "t1", "Hi", "t2", "t3", "t4"]
    # One merged file balances the same way (the kinds, not the files).
    merged = tmp_path / "m.spacy"
    convert([cats, ner], merged, lang="en")
    texts = [eg.reference.text for eg in create_merged_corpus_reader_v1({"m": merged}, balance=True)(nlp)]
    assert len(texts) == 10 and sorted(set(texts)) == ["Hi", "John", "t0", "t1", "t2", "t3", "t4"]
    assert len(list(create_merged_corpus_reader_v1({"c": cats, "n": ner}, balance=True, limit=3)(nlp))) == 3
    # Examples that train no head are not repeated.
    plain = tmp_path / "p.jsonl"
    plain.write_text('{"text": "x", "labels": []}\n')
    texts = [eg.reference.text for eg in create_merged_corpus_reader_v1({"c": cats, "p": plain}, balance=True)(nlp)]
    assert texts == ["t0", "x", "t1", "t2", "t3", "t4"]


def test_a_folder_without_docbin_files_is_an_error(tmp_path, nlp):
    (tmp_path / "train.jsonl").write_text('{"text": "x", "label": "A"}\n')
    with pytest.raises(DataError, match=r"is a folder without \.spacy files"):
        create_corpus_reader_v1(tmp_path)
