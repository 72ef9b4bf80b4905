"""The project workflows `all` and `all-separate`, small: every step runs (convert -> train -> evaluate -> package ->
install-check in a fresh virtual environment), so a broken step fails CI."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TINY_SIZES, tiny_vocab, write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    copy = tmp_path_factory.mktemp("project") / "project"
    ignore = shutil.ignore_patterns(".git", "training", "metrics", "packages", "assets", "converted",
                                    "__pycache__", "*.egg-info", "results", ".pytest_cache", "project.lock")
    shutil.copytree(ROOT, copy, ignore=ignore)
    checkpoint = write_tiny_checkpoint(copy / "assets" / "tiny")
    # The tiny encoder's sizes, written into the configs the workflow trains.
    for name in ("bert_textcat_ner.cfg", "bert_textcat.cfg", "bert_ner.cfg"):
        subprocess.run([sys.executable, "-m", "spacy_bert_cls", "fit-config", str(copy / "configs" / name),
                        str(checkpoint), "--output", str(copy / "configs" / name)], check=True)
    return copy


def _run(project, *args, timeout=900):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    step, *overrides = args
    return subprocess.run([sys.executable, "-m", "spacy", "project", "run", step, str(project), *overrides],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=project)


def test_workflow_all_small(project):
    tiny = ["--vars.bert", "assets/tiny", "--vars.train_steps", "4", "--vars.eval_frequency", "2",
            "--vars.warmup_fraction", "0.25", "--vars.package_name", "bert_ci"]
    for step in ("convert", "train", "evaluate", "package", "install-check"):
        result = _run(project, step, *tiny)
        assert result.returncode == 0, f"{step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    metrics = json.loads((project / "metrics" / "bert_textcat_ner.json").read_text())
    scores = next(iter(metrics["files"].values()))["scores"]
    assert "cats_score" in scores and "ents_f" in scores
    report = (project / "metrics" / "bert_textcat_ner.html").read_text()
    assert "<html" in report and "Confusion matrix" in report and "displacy" in report.lower() or "entities" in report
    check = json.loads((project / "metrics" / "install-check.json").read_text())
    assert check["mismatches"] == 0 and check["texts"] > 0


def test_workflow_all_separate_small(project):
    """all-separate: each head alone, then one assembled pipeline of both, packaged and checked."""
    tiny = ["--vars.bert", "assets/tiny", "--vars.textcat_steps", "4", "--vars.ner_steps", "4",
            "--vars.eval_frequency", "2", "--vars.warmup_fraction", "0.25", "--vars.package_name", "bert_ci"]
    for step in ("convert", "train-textcat", "train-ner", "assemble", "evaluate-separate",
                 "package-separate", "install-check-separate"):
        result = _run(project, step, *tiny)
        assert result.returncode == 0, f"{step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    config = (project / "training" / "separate" / "model-best" / "config.cfg").read_text()
    assert "spacy-bert-cls.BertInlineListener.v1" in config and "[components.bert]" not in config
    metrics = json.loads((project / "metrics" / "separate.json").read_text())
    scores = next(iter(metrics["files"].values()))["scores"]
    assert "cats_score" in scores and "ents_f" in scores
    check = json.loads((project / "metrics" / "install-check-separate.json").read_text())
    assert check["mismatches"] == 0 and check["texts"] > 0


def test_a_broken_step_fails_the_workflow(project):
    bad = project / "corpus" / "ner" / "bad.conll"
    bad.write_text("John\tB-PER\nSmith\tI-LOC\n")
    result = _run(project, "convert", "--vars.ner_train", "corpus/ner/bad.conll")
    assert result.returncode != 0
    assert "bad.conll:2" in (result.stdout + result.stderr).replace("\n", "")


def test_report_renders_in_chromium(project, tmp_path):
    """The evaluation report (classes, entities, pretraining curves) in a real headless browser."""
    from .browser import CHROMIUM, render

    pytest.importorskip("playwright", reason="playwright is not installed (pip install playwright)")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    curves = tmp_path / "log.csv"
    rows = ["step,kind,loss,mlm_perplexity,nsp_accuracy"] + [
        f"{s},train,{9 - s / 10:.2f},{900 / (s + 1):.1f}," for s in range(0, 40, 5)] + ["20,eval,,45.0,0.61", "40,eval,,30.0,0.66"]
    curves.write_text("\n".join(rows) + "\n")
    report = tmp_path / "report.html"
    model = project / "training" / "bert_textcat_ner" / "model-best"
    if not model.exists():
        pytest.skip("the workflow test did not leave a trained pipeline")
    subprocess.run([sys.executable, "-m", "spacy_bert_cls", "evaluate", str(model),
                    str(project / "corpus" / "converted" / "eval.spacy"), "--html", str(report),
                    "--curves", str(curves)], check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    found = render(report, tmp_path / "report.png")
    for problem in ("console_errors", "page_errors", "failed_requests", "outside_requests", "broken_images"):
        assert not found[problem], (problem, found)
    assert found["images"] == 1  # the pretraining curves (the confusion matrix is a table)
    # Every count of the confusion matrix contrasts with its cell (WCAG AA: 4.5:1), as the
    # browser draws them.
    assert found["confusion_cells"] > 0
    assert found["min_confusion_contrast"] >= 4.5, found
    assert found["entity_marks"] > 0 and found["text_length"] > 500
