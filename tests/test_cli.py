from typer.testing import CliRunner

from spacy_bert_cls.cli import app


def test_check_checkpoint_prints_overrides(tiny_checkpoint):
    result = CliRunner().invoke(app, ["check-checkpoint", str(tiny_checkpoint)])
    assert result.exit_code == 0, result.output
    assert "--components.bert.model.hidden_size 32" in result.output


def test_check_checkpoint_fails_clearly(tmp_path):
    result = CliRunner().invoke(app, ["check-checkpoint", str(tmp_path)])
    assert result.exit_code == 1
    assert "config.json" in result.output and "missing" in result.output
