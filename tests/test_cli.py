import json

import pytest
import spacy
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


@pytest.fixture
def multilabel_pipeline(tiny_checkpoint, tiny_model_config, tmp_path):
    from .pipeline.test_heads import MULTI, make_nlp, train

    nlp = make_nlp(tiny_model_config, components=("bert_textcat",), exclusive=False)
    train(nlp, tiny_checkpoint, MULTI, n_iter=5)
    nlp.to_disk(tmp_path / "p")
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "labels": [k for k, v in a["cats"].items() if v]}) + "\n"
                            for t, a in MULTI))
    return tmp_path / "p", data


def test_tune_thresholds_saves_them(multilabel_pipeline, tmp_path):
    pipeline, data = multilabel_pipeline
    result = CliRunner().invoke(app, ["tune-thresholds", str(pipeline), str(data)])
    assert result.exit_code == 0, result.output
    saved = spacy.load(pipeline).get_pipe("bert_textcat").cfg["thresholds"]
    assert set(saved) == {"good", "film", "place"}
    assert not list(tmp_path.glob(".p.*")), "no staging folder left behind"


def test_tune_thresholds_keeps_those_it_cannot_tune_and_says_so(multilabel_pipeline):
    """A label without a positive example in the data went back to 0.5, silently."""
    pipeline, data = multilabel_pipeline
    nlp = spacy.load(pipeline)
    nlp.get_pipe("bert_textcat").set_thresholds({"place": 0.37})
    nlp.to_disk(pipeline)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    data.write_text("".join(json.dumps({**r, "labels": [x for x in r["labels"] if x != "place"]}) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["tune-thresholds", str(pipeline), str(data)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "No positive example in dev.jsonl for place" in result.output
    assert spacy.load(pipeline).get_pipe("bert_textcat").cfg["thresholds"]["place"] == 0.37


def test_tune_thresholds_refuses_outputs_it_must_not_replace(multilabel_pipeline, tmp_path):
    """-o an unrelated existing folder replaced it; -o a file replaced it and left a hidden temporary file."""
    pipeline, data = multilabel_pipeline
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine")
    empty = tmp_path / "ner.conll"  # entities, no labels
    empty.write_text("John\tB-PER\nlives\tO\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    inside = pipeline / "dev.jsonl"
    inside.write_bytes(data.read_bytes())
    for args, what in (([data, "-o", tmp_path / "mine"], "is a folder of other files"),
                       ([data, "-o", tmp_path / "a_file"], "is a file"),
                       ([inside], f"--output {pipeline} holds {inside}"),
                       ([empty], f"{empty}: no examples with labels")):
        result = CliRunner().invoke(app, ["tune-thresholds", str(pipeline), *map(str, args)], env={"COLUMNS": "300"})
        assert result.exit_code == 1 and what in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "mine" / "keep.txt").read_text() == "mine" and (tmp_path / "a_file").read_text() == "mine"
    again = [str(pipeline), str(data), "-o", str(tmp_path / "tuned")]  # a second run over its own output
    for _ in range(2):
        result = CliRunner().invoke(app, ["tune-thresholds", *again])
        assert result.exit_code == 0, result.output


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
