"""The convert command: every converter error names the file and line, and writes nothing."""
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_bert_cls.cli import app
from spacy_bert_cls.convert import convert
from spacy_bert_cls.errors import DataError

TRAIN_JSONL = '{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n'
TRAIN_CONLL = "John\tB-PER\nvisited\tO\nParis\tB-LOC\n\nHi\tO\n"


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    return path


def test_converts_textcat_and_ner(tmp_path):
    out = tmp_path / "tc.spacy"
    summary = convert(_write(tmp_path, "t.jsonl", TRAIN_JSONL), out)
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert summary["examples"] == 2 and docs[0].cats == {"neg": 0.0, "pos": 1.0}
    out = tmp_path / "ner.spacy"
    convert(_write(tmp_path, "t.conll", TRAIN_CONLL), out)
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("John", "PER"), ("Paris", "LOC")]


def test_converts_raw_text(tmp_path):
    out = tmp_path / "raw.txt"
    convert(_write(tmp_path, "r.jsonl", '{"text": "one\\ntwo"}\n{"text": "three"}\n'), out, format="raw")
    assert out.read_text() == "one\ntwo\n\nthree\n\n"


@pytest.mark.parametrize(
    "name,content,message,kwargs",
    [
        ("a.conll", "John\tB-PER\nvisited\n", r"a\.conll:2: only one column", {}),
        ("b.conll", "John\tB-PER\nSmith\tI-LOC\n", r"b\.conll:2: bad IOB sequence: 'I-LOC' after 'B-PER'", {}),
        ("c.conll", "the\tO\nSmith\tI-PER\n", r"c\.conll:2: bad IOB sequence", {}),
        ("d.jsonl", '{"text": "ok", "label": "pos"}\n{"text": "x", "label": \n', r"d\.jsonl:2: invalid JSON", {}),
        ("e.jsonl", '{"label": "pos"}\n', r"e\.jsonl:1: .*text", {}),
        ("f.jsonl", '{"text": "ok"}\n', r"f\.jsonl:1: .*label", {}),
        ("g.jsonl", '{"text": "ok", "label": "neutral"}\n', r"g\.jsonl:1: .*neutral", {"labels_from": "train.jsonl"}),
        ("h.conll", "Rome\tB-CITY\n", r"h\.conll:1: entity label\(s\) \['CITY'\] do not occur in the training data",
         {"labels_from": "train.conll"}),
        ("i.jsonl", "", r"i\.jsonl: .*(empty|no examples)", {}),
        ("j.conll", "\n\n", r"j\.conll: .*(empty|no examples|no token)", {}),
        ("k.jsonl", b'{"text": "caf\xe9", "label": "pos"}\n', r"k\.jsonl:1: .*UTF-8", {}),
        ("l.conll", b"John\tB-PER\n\xff\tO\n", r"l\.conll:2: .*UTF-8", {}),
        ("m.txt", b"", r"m\.txt: no text", {"format": "raw"}),
        ("n.conll", b"\n-DOCSTART- O\n\n", r"n\.conll: no text", {"format": "raw"}),
        ("o.conll", "John\n", r"o\.conll:1: only one column", {"format": "raw"}),
        ("p.txt", "some raw text\n", r"p\.txt: a \.txt file is raw text: .*--format raw", {}),
    ],
    ids=["columns", "iob-type", "iob-start", "json", "no-text", "no-label", "unknown-label", "unknown-entity",
         "empty-jsonl", "empty-conll", "utf8-jsonl", "utf8-conll", "empty-raw", "empty-conll-raw",
         "conll-raw-columns", "raw-auto"],
)
def test_converter_errors_leave_nothing_behind(tmp_path, name, content, message, kwargs):
    _write(tmp_path, "train.jsonl", TRAIN_JSONL)
    _write(tmp_path, "train.conll", TRAIN_CONLL)
    if "labels_from" in kwargs:
        kwargs = {**kwargs, "labels_from": tmp_path / kwargs["labels_from"]}
    out = tmp_path / "out" / ("result.txt" if kwargs.get("format") == "raw" else "result.spacy")
    with pytest.raises(DataError, match=message):
        convert(_write(tmp_path, name, content), out, **kwargs)
    assert not out.exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_convert_command_reports_and_exits_1(tmp_path):
    bad = _write(tmp_path, "bad.conll", "John\tB-PER\nSmith\tI-LOC\n")
    result = CliRunner().invoke(app, ["convert", str(bad), "--output", str(tmp_path / "o.spacy")])
    assert result.exit_code == 1 and "bad.conll:2" in result.output.replace("\n", "")
    good = _write(tmp_path, "good.conll", TRAIN_CONLL)
    result = CliRunner().invoke(app, ["convert", str(good), "--output", str(tmp_path / "o.spacy")])
    assert result.exit_code == 0 and (tmp_path / "o.spacy").is_file()


def test_textcat_and_ner_files_merge_into_one(tmp_path):
    dev_jsonl = _write(tmp_path, "dev.jsonl", '{"text": "fine film", "label": "pos"}\n')
    dev_conll = _write(tmp_path, "dev.conll", "Mary\tB-PER\n")
    train_jsonl = _write(tmp_path, "train.jsonl", TRAIN_JSONL)
    train_conll = _write(tmp_path, "train.conll", TRAIN_CONLL)
    out = tmp_path / "dev.spacy"
    result = CliRunner().invoke(app, ["convert", str(dev_jsonl), str(dev_conll), "--output", str(out),
                                      "--labels-from", str(train_jsonl), "--labels-from", str(train_conll)])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert docs[0].cats == {"neg": 0.0, "pos": 1.0} and not docs[0].has_annotation("ENT_IOB")
    assert not docs[1].cats and [e.label_ for e in docs[1].ents] == ["PER"]


# A CoNLL file with a part-of-speech column after the tag: the last column is not a tag.
TAG_THEN_POS = {
    "tab": "-DOCSTART-\t-X-\tO\n\nJohn\tB-PER\tNNP\nSmith\tI-PER\tNNP\nvisited\tO\tVBD\nParis\tB-LOC\tNNP\n\nHi\tO\tUH\n",
    "space": "-DOCSTART- -X- O\n\nJohn B-PER NNP\nSmith  I-PER NNP\nvisited O VBD\r\nParis B-LOC NNP\n\nHi O UH\n",
}


@pytest.mark.parametrize("separator", ["tab", "space"])
def test_wrong_column_says_what_the_file_must_look_like_and_a_fix_that_works(tmp_path, separator):
    import re
    import shutil
    import subprocess

    tool = "cut" if separator == "tab" else "awk"
    if shutil.which(tool) is None:
        pytest.skip(f"no {tool} on this machine")
    bad = _write(tmp_path, "pos.conll", TAG_THEN_POS[separator])
    out = tmp_path / "o.spacy"
    result = CliRunner().invoke(app, ["convert", str(bad), "--output", str(out)], env={"COLUMNS": "40"})
    assert result.exit_code == 1 and not out.exists()
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("✘ Conversion stopped; nothing was written: "), result.output
    message = lines[0]
    assert (f"{bad}:3: tag 'NNP' is not IOB2 (O, B-X, I-X), nor an IOB1, BILUO or IOBES tag: it is the last of "
            f"the line's 3 columns ('John', 'B-PER', 'NNP')") in message
    assert "token<TAB>tag" in message and "scheme 'any'" not in message and "--scheme" not in message
    command = re.search(r"keep the token and that column with: (.*)$", message).group(1)
    assert command.startswith(tool)
    subprocess.run(["bash", "-c", command], check=True, cwd=tmp_path)
    fixed = tmp_path / "pos_fixed.conll"
    result = CliRunner().invoke(app, ["convert", str(fixed), "--output", str(out)])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("John Smith", "PER"), ("Paris", "LOC")]


def test_wrong_column_with_scheme_any_gets_the_same_message(tmp_path):
    bad = _write(tmp_path, "pos.conll", TAG_THEN_POS["tab"])
    with pytest.raises(DataError, match=r"pos\.conll:3: tag 'NNP' is not an NER tag .*3 columns .*token<TAB>tag.*cut -f1,2 "):
        convert(bad, tmp_path / "o.spacy", scheme="any")


@pytest.mark.parametrize(
    "content,found",
    [("John\tPER\nvisited\tO\n", r"pos\.conll:1: tag 'PER' is not IOB2 .*2 columns \('John', 'PER'\)"),
     ("John\tB-PER\tNNP\nvisited\tVBD\n", r"pos\.conll:1: tag 'NNP' .*3 columns"),  # line 2 has no tag column: no fix
     ("John\tNNP\tNNP\n", r"pos\.conll:1: tag 'NNP' .*3 columns")],
    ids=["two-columns", "no-column-works-everywhere", "no-tag-column"],
)
def test_wrong_column_without_a_column_that_works_suggests_no_command(tmp_path, content, found):
    bad = _write(tmp_path, "pos.conll", content)
    with pytest.raises(DataError, match=found) as err:
        convert(bad, tmp_path / "o.spacy")
    assert "token<TAB>tag" in str(err.value)
    assert "scheme" not in str(err.value) and "cut" not in str(err.value) and "awk" not in str(err.value)


@pytest.mark.parametrize("content", ["John\tU-PER\nvisited\tO\n", "John\tI-PER\nvisited\tO\n"], ids=["biluo", "iob1"])
def test_scheme_any_is_suggested_for_biluo_and_iob1_tags_and_works(tmp_path, content):
    path = _write(tmp_path, "t.conll", content)
    with pytest.raises(DataError, match=r"t\.conll:1: .*scheme 'any' \(--scheme any\)"):
        convert(path, tmp_path / "o.spacy")
    convert(path, tmp_path / "o.spacy", scheme="any")
    docs = list(DocBin().from_disk(tmp_path / "o.spacy").get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("John", "PER")]


def test_tag_in_the_last_of_several_columns_converts(tmp_path):
    path = _write(tmp_path, "t.conll", "John\tNNP\tB-PER\nvisited\tVBD\tO\nParis\tNNP\tB-LOC\n")
    convert(path, tmp_path / "o.spacy")
    docs = list(DocBin().from_disk(tmp_path / "o.spacy").get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("John", "PER"), ("Paris", "LOC")]


def test_raw_text_from_conll_keeps_the_tokens_not_the_tags(tmp_path):
    conll = _write(tmp_path, "d.conll", "-DOCSTART-\tO\n\nJohn\tB-PER\nran\tO\n\nHi\tO\n\n-DOCSTART-\tO\n\nBye\tO\n")
    out = tmp_path / "d.txt"
    summary = convert(conll, out, format="raw")
    # as pretrain's suggested awk command: a sentence a line, a document per -DOCSTART-
    assert out.read_text() == "John ran\nHi\n\nBye\n\n" and summary["documents"] == 2


@pytest.mark.parametrize("inputs,output,kwargs,message", [
    (["t.jsonl"], "t.jsonl", {}, r"--output .*t\.jsonl is .*t\.jsonl, which this command reads"),
    (["t.jsonl"], ".", {}, r"--output \S+ is a folder"),
    (["t.jsonl", "t.jsonl"], "x.spacy", {}, r"t\.jsonl: is given twice"),
    (["t.jsonl"], "x.txt", {}, r"x\.txt: the output is spaCy's binary format.*name it \*\.spacy"),
    (["t.jsonl"], "x", {}, r"x: the output is spaCy's binary format"),
    (["t.jsonl"], "x.spacy", {"format": "raw"}, r"x\.spacy: the output is raw text \(--format raw\): name it \*\.txt"),
    (["t.jsonl"], "x.spacy", {"format": "xyz"}, r"--format must be one of auto, jsonl, conll, raw"),
    (["t.jsonl"], "x.spacy", {"lang": "xx_bogus"}, r"--lang 'xx_bogus' is not a language spaCy has"),
], ids=["overwrite", "folder", "twice", "txt-output", "no-suffix", "raw-to-spacy", "format", "lang"])
def test_output_and_options_are_checked_before_anything_is_written(tmp_path, inputs, output, kwargs, message):
    source = _write(tmp_path, "t.jsonl", TRAIN_JSONL)
    with pytest.raises(ValueError, match=message):
        convert([tmp_path / name for name in inputs], tmp_path / output, **kwargs)
    assert source.read_text() == TRAIN_JSONL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_merged_labels_are_listed_once(tmp_path):
    first = _write(tmp_path, "a.jsonl", TRAIN_JSONL)
    second = _write(tmp_path, "b.jsonl", TRAIN_JSONL)
    assert convert([first, second], tmp_path / "ab.spacy")["labels"] == ["neg", "pos"]
