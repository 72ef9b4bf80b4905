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


def test_check_checkpoint_prints_one_unwrapped_override_a_line(tiny_checkpoint):
    import re

    from spacy_bert_cls.checkpoint.hf import BEHAVIOUR_FIELDS, SHAPE_FIELDS

    result = CliRunner().invoke(app, ["check-checkpoint", str(tiny_checkpoint)], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    pairs = [line for line in lines if line.startswith("--components.")]
    assert [p.split()[0] for p in pairs] == [f"--components.bert.model.{k}" for k in SHAPE_FIELDS + BEHAVIOUR_FIELDS]
    assert all(re.fullmatch(r"--components\.bert\.model\.\w+ \S+", p) for p in pairs), pairs
    assert "--components.bert.model.hidden_size 32" in pairs
    assert not any("--components" in line and line not in pairs for line in lines), result.output


def test_check_checkpoint_error_is_one_unwrapped_line(tmp_path):
    folder = tmp_path / "a_checkpoint_folder_with_a_long_name_that_a_narrow_terminal_would_wrap"
    folder.mkdir()
    result = CliRunner().invoke(app, ["check-checkpoint", str(folder)], env={"COLUMNS": "40"})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("✘ Checkpoint cannot be loaded: "), result.output
    assert f"{folder / 'config.json'}: missing" in lines[0]
