"""fit-config keeps the config's text: comments, order and layout, with only the fitted
settings changed (thinc's own writer drops the comments)."""
from pathlib import Path

import pytest
from thinc.api import Config
from typer.testing import CliRunner

from spacy_bert_cls.checkpoint.fit_config import fit_config, set_values
from spacy_bert_cls.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_the_config_keeps_its_comments_and_gets_the_checkpoints_sizes(tiny_checkpoint, tmp_path):
    source = ROOT / "configs" / "bert_ner.cfg"
    text = source.read_text()
    assert "#" in text
    fitted = fit_config(source, tiny_checkpoint, tmp_path / "fitted.cfg")
    assert fitted.comments_kept and "hidden_size" in fitted.changed
    written = (tmp_path / "fitted.cfg").read_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert comments and comments == [line for line in written.splitlines() if line.lstrip().startswith("#")]
    config = Config().from_str(written, interpolate=False)
    model = config["components"]["bert"]["model"]
    assert model["hidden_size"] == 32 and config["paths"]["bert"] == str(tiny_checkpoint)
    untouched = Config().from_str(text, interpolate=False)
    assert config["training"] == untouched["training"] and config["nlp"] == untouched["nlp"]


def test_set_values_replaces_lines_in_place_and_adds_what_is_missing():
    text = ("# top\n[paths]\ntrain = null\n\n[a]\n\n[a.b]\n# size\nx = 1\ny = [\n    1,\n    2]\nz = \"k\"\n\n"
            "[c]\nw = true\n")
    edited = set_values(text, {"a.b": {"x": 5, "y": [3], "new": "v"}, "paths": {"bert": "/p"}, "d": {"q": 1.5}})
    assert edited.splitlines()[:3] == ["# top", "[paths]", "train = null"]
    assert "# size\nx = 5\ny = [3]\nz = \"k\"\nnew = \"v\"\n" in edited
    assert "bert = \"/p\"" in edited and edited.rstrip().endswith("[d]\nq = 1.5")
    parsed = Config().from_str(edited)
    assert parsed["a"]["b"] == {"x": 5, "y": [3], "z": "k", "new": "v"} and parsed["c"] == {"w": True}
    assert parsed["paths"] == {"train": None, "bert": "/p"}


def test_odd_but_valid_layouts_are_kept_or_written_by_thinc(tiny_checkpoint, tmp_path):
    """A ':' for '=', a comment after a section header, an indented comment after a replaced
    value, CRLF line ends: kept; a layout the text edit cannot follow is written by thinc
    (it crashed with a configparser traceback)."""
    source = (ROOT / "configs" / "bert_ner.cfg").read_text()
    model = "[components.bert.model]"
    odd = source.replace(model, model + " # the encoder").replace("hidden_size = 384", "hidden_size: 384\n    # size")
    (tmp_path / "odd.cfg").write_bytes(odd.replace("\n", "\r\n").encode("utf8"))
    fitted = fit_config(tmp_path / "odd.cfg", tiny_checkpoint, tmp_path / "fitted.cfg")
    written = (tmp_path / "fitted.cfg").read_bytes().decode("utf8")
    assert fitted.comments_kept and "# the encoder" in written and "    # size" in written
    assert "\r\n" in written and "\n" not in written.replace("\r\n", "")
    assert Config().from_str(written, interpolate=False)["components"]["bert"]["model"]["hidden_size"] == 32
    (tmp_path / "dup.cfg").write_text(source.replace("[paths]", "[paths]\n[paths]"))
    with pytest.raises(ValueError, match="dup.cfg: not a config spaCy reads: .*'paths' already exists"):
        fit_config(tmp_path / "dup.cfg", tiny_checkpoint, tmp_path / "dup_fitted.cfg")
    assert not (tmp_path / "dup_fitted.cfg").exists()


def test_an_edit_that_does_not_parse_falls_back_to_thincs_text(tiny_checkpoint, tmp_path, monkeypatch):
    import spacy_bert_cls.checkpoint.fit_config as module

    monkeypatch.setattr(module, "set_values", lambda text, values: text + "\n[paths]\n")  # a duplicate section
    fitted = fit_config(ROOT / "configs" / "bert_ner.cfg", tiny_checkpoint, tmp_path / "fitted.cfg")
    assert not fitted.comments_kept
    assert Config().from_disk(tmp_path / "fitted.cfg", interpolate=False)["paths"]["bert"] == str(tiny_checkpoint)


def test_the_command_says_when_comments_could_not_be_kept(tiny_checkpoint, tmp_path, monkeypatch):
    import spacy_bert_cls.checkpoint.fit_config as module

    monkeypatch.setattr(module, "set_values", lambda text, values: text)  # an edit that misses
    result = CliRunner().invoke(app, ["fit-config", str(ROOT / "configs" / "bert_ner.cfg"), str(tiny_checkpoint),
                                      "-o", str(tmp_path / "fitted.cfg")])
    assert result.exit_code == 0, result.output
    assert "without bert_ner.cfg's comments" in result.output
    model = Config().from_disk(tmp_path / "fitted.cfg", interpolate=False)["components"]["bert"]["model"]
    assert model["hidden_size"] == 32
