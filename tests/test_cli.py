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


def test_tune_thresholds_saves_them(tiny_checkpoint, tiny_model_config, tmp_path):
    import json

    import spacy

    from .pipeline.test_heads import MULTI, make_nlp, train

    nlp = make_nlp(tiny_model_config, components=("bert_textcat",), exclusive=False)
    train(nlp, tiny_checkpoint, MULTI, n_iter=5)
    nlp.to_disk(tmp_path / "p")
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "labels": [k for k, v in a["cats"].items() if v]}) + "\n"
                            for t, a in MULTI))
    result = CliRunner().invoke(app, ["tune-thresholds", str(tmp_path / "p"), str(data)])
    assert result.exit_code == 0, result.output
    saved = spacy.load(tmp_path / "p").get_pipe("bert_textcat").cfg["thresholds"]
    assert set(saved) == {"good", "film", "place"}
    assert not list(tmp_path.glob(".p.*")), "no staging folder left behind"
