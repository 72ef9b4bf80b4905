"""install_check's bookkeeping without installing anything: `_run` is replaced by a fake that
plays the fresh environment. The real install runs in tests/test_project.py (the demo project)."""
import json

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bert_cls import install_check as module


@pytest.fixture
def pipeline_and_data(tmp_path):
    nlp = spacy.blank("en")
    nlp.to_disk(tmp_path / "pipeline")
    data = tmp_path / "eval.spacy"
    DocBin(docs=[nlp("A first text."), nlp("And a second one.")]).to_disk(data)
    wheel = tmp_path / "en_demo-0.0.1-py3-none-any.whl"
    wheel.write_bytes(b"not a real wheel: the fake environment never installs it")
    return tmp_path / "pipeline", data, wheel


def fake_environment(monkeypatch, answer):
    """Replace the subprocess calls; the child's call writes `answer(texts)` as its predictions."""
    calls = []

    def fake_run(command, env=None):
        calls.append(command)
        if command[1:3] == ["-m", "venv"]:
            (module.Path(command[3]) / "bin").mkdir(parents=True)
        elif command[1] == "-c":
            texts = json.loads(module.Path(command[4]).read_text(encoding="utf8"))
            module.Path(command[5]).write_text(json.dumps({"predictions": answer(texts)}), encoding="utf8")

    monkeypatch.setattr(module, "_run", fake_run)
    return calls


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(module.tempfile, "tempdir", str(root))
    return root


def same(texts):
    return [{"cats": {}, "ents": []} for _ in texts]


def test_temporary_environment_is_removed(pipeline_and_data, temp_root, monkeypatch):
    pipeline, data, wheel = pipeline_and_data
    calls = fake_environment(monkeypatch, same)
    summary = module.install_check(wheel, pipeline, [data])
    assert summary["texts"] == 2 and summary["mismatches"] == 0 and summary["venv"] is None
    assert any(str(wheel) in command for command in calls)
    assert list(temp_root.iterdir()) == [], "the temporary environment outlived the check"


def test_temporary_environment_is_removed_when_predictions_differ(pipeline_and_data, temp_root, monkeypatch):
    pipeline, data, wheel = pipeline_and_data
    fake_environment(monkeypatch, lambda texts: [{"cats": {}, "ents": [[0, 1, "X"]]} for _ in texts])
    with pytest.raises(AssertionError, match="differs on 2 of 2 texts") as raised:
        module.install_check(wheel, pipeline, [data])
    assert list(temp_root.iterdir()) == []
    # the report the command writes with -o: which texts differ, and how
    report = raised.value.summary
    assert report["mismatches"] == 2 and report["first_mismatches"][0]["installed"]["ents"] == [[0, 1, "X"]]


def test_given_environment_is_kept(pipeline_and_data, temp_root, tmp_path, monkeypatch):
    pipeline, data, wheel = pipeline_and_data
    fake_environment(monkeypatch, same)
    summary = module.install_check(wheel, pipeline, [data], venv=tmp_path / "kept")
    assert summary["venv"] == str(tmp_path / "kept") and (tmp_path / "kept" / "bin").is_dir()
    assert list(temp_root.iterdir()) == []


def test_a_venv_folder_with_other_files_and_a_missing_source_path_are_refused_first(tmp_path):
    wheel = tmp_path / "x-0.0.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("the user's")
    with pytest.raises(ValueError, match="holds other files, not a virtual environment"):
        module.install_check(wheel, tmp_path / "pipeline", [], venv=tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]
    with pytest.raises(FileNotFoundError, match="--package-source is a path that does not exist"):
        module.install_check(wheel, tmp_path / "pipeline", [], package_source=str(tmp_path / "nope"))


def test_the_command_writes_its_report_when_predictions_differ(pipeline_and_data, temp_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from spacy_bert_cls.cli import app

    pipeline, data, wheel = pipeline_and_data
    fake_environment(monkeypatch, lambda texts: [{"cats": {}, "ents": [[0, 1, "X"]]} for _ in texts])
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["install-check", str(wheel), str(pipeline), str(data), "-o", str(report)],
                                catch_exceptions=False)
    assert result.exit_code == 1 and "report: " in result.output and "Traceback" not in result.output
    assert json.loads(report.read_text())["mismatches"] == 2
