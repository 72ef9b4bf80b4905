"""spacy-bert-cls evaluate: what it prints without -o/--html, a file with nothing the
pipeline predicts, and a confusion matrix whose counts can be read."""
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
