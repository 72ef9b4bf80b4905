"""spacy-bert-cls evaluate: what it prints without -o/--html, a file with nothing the
pipeline predicts, outputs it must not write, and a confusion matrix whose counts can be read."""
import json
import re

import pytest
from typer.testing import CliRunner

from spacy_bert_cls.cli import app
from spacy_bert_cls.evaluate import _confusion_table

from .pipeline.test_heads import TRAIN, make_nlp, train
from .test_configs import CORPUS


@pytest.fixture(scope="module")
def pipelines(tiny_checkpoint, tiny_model_config, tmp_path_factory):
    """A bert_ner-only and a bert_textcat-only pipeline, saved."""
    folder = tmp_path_factory.mktemp("evaluate")
    for name in ("bert_ner", "bert_textcat"):
        nlp = make_nlp(tiny_model_config, components=(name,))
        train(nlp, tiny_checkpoint, TRAIN, n_iter=2)
        nlp.to_disk(folder / name)
    (folder / "dev.jsonl").write_text("".join(
        json.dumps({"text": text, "label": max(a["cats"], key=a["cats"].get)}) + "\n" for text, a in TRAIN))
    return folder


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("✘ "), result.output
    return lines[0]


@pytest.mark.parametrize("pipeline,data,predicts,holds", [
    ("bert_ner", "textcat/dev.jsonl", "entities (bert_ner)", "text categories"),
    ("bert_textcat", "ner/dev.conll", "text categories (bert_textcat)", "entity annotations"),
])
def test_nothing_in_common_is_an_error_naming_both(pipelines, tmp_path, pipeline, data, predicts, holds):
    """It printed an empty table (or zeros) and exited 0."""
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["evaluate", str(pipelines / pipeline), str(CORPUS / data), "-o", str(out)],
                                env={"COLUMNS": "60"})
    line = _one_line_error(result)
    assert str(CORPUS / data) in line and str(pipelines / pipeline) in line
    assert predicts in line and f"holds {holds}" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_without_output_options_it_prints_the_metrics(pipelines, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(pipelines / "bert_textcat"), str(pipelines / "dev.jsonl")])
    assert result.exit_code == 0, result.output
    assert re.search(r"accuracy\s+\d\.\d{4}", result.output) and re.search(r"cats_macro_f\s+\d\.\d{4}", result.output)
    assert "-o" in result.output and "--html" in result.output  # says how to write them
    help_text = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"}).output
    assert "Prints" in help_text and "--output" in help_text


def _contrast(a: str, b: str) -> float:
    def lum(hex_colour):
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b_ = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_

    x, y = lum(a), lum(b)
    return (max(x, y) + 0.05) / (min(x, y) + 0.05)


def test_confusion_counts_contrast_with_their_cells():
    """Black counts on the darkest cells could not be read; each count is now black or
    white, whichever contrasts more (at least 4.5:1, WCAG AA). The browser check of the
    rendered report is in tests/test_project.py."""
    confusion = {g: {p: (500 if g == p else n) for p in "ABCD"} for n, g in zip((0, 3, 60, 250), "ABCD")}
    table = _confusion_table(confusion)
    cells = re.findall(r'background-color:(#[0-9a-f]{6});color:(#[0-9a-f]{6})">(\d+)<', table)
    assert len(cells) == 16
    assert min(_contrast(bg, fg) for bg, fg, _ in cells) >= 4.5
    assert {fg for _, fg, _ in cells} == {"#000000", "#ffffff"}


def _evaluate(*args):
    return CliRunner().invoke(app, ["evaluate", *map(str, args)], env={"COLUMNS": "60"})


def test_outputs_that_would_replace_an_input_or_cannot_be_written_are_refused_first(pipelines, tmp_path):
    """`-o DATA` wrote the metrics over the data file (exit 0); `-o FOLDER` and `-o FILE/x`
    ended in tracebacks after scoring; `-o X --html X` kept only the report."""
    data = tmp_path / "dev.jsonl"
    data.write_bytes((pipelines / "dev.jsonl").read_bytes())
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("mine\n")
    pipeline = pipelines / "bert_textcat"
    cases = [(["-o", data], "--output", "which this command reads"),
             (["--html", pipeline], "--html", "is a folder"),
             (["-o", tmp_path / "a_folder"], "--output", "is a folder"),
             (["-o", tmp_path / "a_file" / "m.json"], "--output", "is a file, not a folder"),
             (["-o", tmp_path / "r.out", "--html", tmp_path / "r.out"], "both", "a file each"),
             (["-o", pipeline / "meta.json"], "--output", "is a file of")]
    for options, option, what in cases:
        line = _one_line_error(_evaluate(pipeline, data, *options))
        assert option in line and what in line, line
    assert data.read_bytes() == (pipelines / "dev.jsonl").read_bytes()
    assert (tmp_path / "a_file").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder", "dev.jsonl"]


def test_curves_must_be_a_log_and_go_in_a_report(pipelines, tmp_path):
    """--curves was ignored without --html, or when the file was missing; an empty one gave an empty plot."""
    data, report = pipelines / "dev.jsonl", tmp_path / "r.html"
    (tmp_path / "empty.csv").write_text("")
    for curves, options, what in ((tmp_path / "log.csv", [], "add --html"),
                                  (tmp_path / "missing.csv", ["--html", report], "no such file"),
                                  (tmp_path / "empty.csv", ["--html", report], "no training rows")):
        line = _one_line_error(_evaluate(pipelines / "bert_textcat", data, "--curves", curves, *options))
        assert what in line and str(curves) in line, line
    assert not report.exists()
    log = tmp_path / "log.csv"
    log.write_text("step,kind,loss,mlm_perplexity\n5,train,8.0,900.0\n")
    for option in ("-o", "--html"):  # the log would be replaced before the report reads it
        line = _one_line_error(_evaluate(pipelines / "bert_textcat", data, option, log, "--curves", log,
                                         *(["--html", report] if option == "-o" else [])))
        assert "which this command reads" in line, line
    assert log.read_text().startswith("step,kind")


def test_entity_labels_the_pipeline_lacks(pipelines, tmp_path):
    """An NER file none of whose labels the pipeline predicts scored 0.0 and exited 0; some
    unknown labels are named in a warning."""
    foreign = tmp_path / "foreign.conll"
    foreign.write_text("John\tB-PERSON\nvisited\tO\nParis\tB-GPE\n")
    line = _one_line_error(_evaluate(pipelines / "bert_ner", foreign))
    assert str(foreign) in line and "GPE, PERSON" in line and "LOC, ORG, PER" in line
    mixed = tmp_path / "mixed.conll"
    mixed.write_text("john\tB-PER\nvisited\tO\nparis\tB-GPE\n")
    result = _evaluate(pipelines / "bert_ner", mixed)
    assert result.exit_code == 0, result.output
    assert "does not predict" in result.output and "GPE" in result.output


def test_unknown_entity_labels_beside_text_categories_are_named_not_refused(pipelines):
    """A file with text categories to score is scored, whatever its entity labels."""
    import spacy
    from spacy.training import Example

    from spacy_bert_cls.evaluate import _unknown_entity_labels

    nlp = spacy.load(pipelines / "bert_ner")
    doc = nlp.make_doc("John visited Paris")
    example = Example.from_dict(doc, {"entities": [(0, 4, "PERSON")], "cats": {"POS": 1.0}})
    assert _unknown_entity_labels(nlp, pipelines / "x.spacy", [example], scores_cats=True) == ["PERSON"]
    with pytest.raises(ValueError, match="none of its entity labels"):
        _unknown_entity_labels(nlp, pipelines / "x.spacy", [example], scores_cats=False)
