"""Killed processes and a full disk: nothing that was saved before is lost.

- `spacy-bert-cls pretrain` SIGKILLed at 12 seeded points (during checkpoint writes, during
  training, during start-up and resume, during model-last's write), resumed each time: the
  final weights equal an uninterrupted run's, bit for bit.
- save_pipeline and export-hf killed at random moments while saving: the folder is always
  one whole version and loads; plain `nlp.to_disk` under the same kills, for comparison.
- `spacy train` with the atomic_save callback killed while saving model-last.
- A full disk (a small tmpfs) during a pretraining checkpoint: a clear error, the last
  checkpoint kept, and a resume that ends bit-exact once there is space.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_bert_cls.saving import save_pipeline

from ..conftest import write_tiny_checkpoint
from ..test_saving import two_pipelines  # noqa: F401 (a fixture)
from . import faults

pytestmark = pytest.mark.stress
N_PRETRAIN_KILLS = int(os.environ.get("STRESS_KILLS", "12"))
N_SAVE_KILLS = int(os.environ.get("STRESS_SAVE_KILLS", "30"))


def test_pretraining_killed_at_many_points_resumes_bit_exact(tmp_path, figures):
    result = faults.killed_pretraining(tmp_path, n_kills=N_PRETRAIN_KILLS, seed=0)
    figures["pretrain_kills"] = {"kill_points_survived": result["n_killed"], "during_writes": result["n_mid_write"],
                                 "points": [f"{p['kind']}@{p['step']}" for p in result["kill_points"]]}
    assert result["n_killed"] >= 10
    assert result["n_mid_write"] >= 3  # checkpoint and model-last writes really were cut


def _loads(path):
    assert spacy.load(path)("i love this movie").cats


def test_killed_saves_never_leave_a_broken_pipeline(two_pipelines, tmp_path, figures):
    refs = []
    for i, nlp in enumerate(two_pipelines):
        save_pipeline(nlp, tmp_path / f"ref{i}")
        refs.append(faults.tree_digest(tmp_path / f"ref{i}"))
    atomic = faults.kill_saves(lambda i: save_pipeline(two_pipelines[i], tmp_path / "a" / "p"), tmp_path / "a" / "p",
                               refs, n_kills=N_SAVE_KILLS, seed=0, max_delay=0.4, check=_loads)
    (tmp_path / "b").mkdir()  # spaCy's to_disk makes only the last folder
    plain = faults.kill_saves(lambda i: two_pipelines[i].to_disk(tmp_path / "b" / "p"), tmp_path / "b" / "p",
                              refs, n_kills=N_SAVE_KILLS, seed=0, max_delay=0.4, check=_loads)
    figures["save_pipeline_kills"] = {k: v for k, v in atomic.items() if k != "errors"}
    figures["plain_to_disk_kills"] = {k: v for k, v in plain.items() if k != "errors"}
    assert atomic["broken"] == 0, atomic["errors"]


def test_killed_exports_never_leave_a_broken_folder(two_pipelines, tmp_path, figures):
    from spacy_bert_cls.checkpoint import load_bert_checkpoint
    from spacy_bert_cls.interop.hf_export import export_hf

    refs = []
    for i, nlp in enumerate(two_pipelines):
        export_hf(nlp, tmp_path / f"ref{i}")
        refs.append(faults.tree_digest(tmp_path / f"ref{i}"))
    target = tmp_path / "out" / "exported"
    outcome = faults.kill_saves(lambda i: export_hf(two_pipelines[i], target, overwrite=True), target, refs,
                                n_kills=N_SAVE_KILLS, seed=1, max_delay=0.4, check=load_bert_checkpoint)
    figures["export_kills"] = {k: v for k, v in outcome.items() if k != "errors"}
    assert outcome["broken"] == 0, outcome["errors"]


def _train_config(tmp_path: Path, checkpoint: Path, atomic: bool) -> Path:
    from thinc.api import Config

    from ..conftest import TINY_SIZES, tiny_vocab

    config = Config().from_disk(faults.ROOT / "configs" / "textcat.cfg", interpolate=False)
    config["components"]["bert"]["model"].update({**TINY_SIZES, "vocab_size": len(tiny_vocab()),
                                                  "window_size": 16, "stride": 8})
    config["training"].update({"eval_frequency": 1, "max_steps": 400, "patience": 0})
    config["training"]["before_to_disk"] = {"@callbacks": "spacy-bert-cls.atomic_save.v1"} if atomic else None
    path = tmp_path / ("atomic.cfg" if atomic else "plain.cfg")
    config.to_disk(path, interpolate=False)
    return path


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic_save", "spacy-default"])
def test_spacy_train_killed_while_saving_model_last(tmp_path, figures, atomic):
    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt")
    config = _train_config(tmp_path, checkpoint, atomic)
    out = tmp_path / "out"
    data = faults.ROOT / "corpus" / "textcat"
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(out),
               "--paths.train", str(data / "train.jsonl"), "--paths.dev", str(data / "dev.jsonl"),
               "--paths.bert", str(checkpoint)]
    model_last = out / "model-last"
    results = []
    for kill in range(3):
        if atomic:  # while the next save of model-last is in its temporary folder
            condition = lambda: model_last.is_dir() and any(  # noqa: E731
                p.name.startswith(".model-last.") for p in faults.temporaries(out))
        else:  # spaCy's to_disk writes into model-last itself: once a new save has begun
            condition = _NewSave(model_last / "meta.json")
        outcome = faults.kill_when(command, faults.child_env(write_delay=0.3 if atomic else 0.0), condition,
                                   delay=0.05 * kill)
        assert outcome["killed"], outcome
        try:
            _loads(model_last)
            results.append("intact")
        except Exception as err:  # noqa: BLE001 - the figure for spaCy's own saving
            results.append(f"broken: {type(err).__name__}")
    figures[f"spacy_train_kills_{'atomic_save' if atomic else 'spacy_default'}"] = results
    if atomic:
        assert results == ["intact"] * 3, results


class _NewSave:
    """True once `path` is written again after its first appearance (a save under way:
    spaCy writes meta.json before the components' files)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first = None

    def __call__(self) -> bool:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if self.first is None:
            self.first = mtime
        return mtime != self.first


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")


def test_full_disk_during_a_checkpoint_keeps_the_last_one(tmp_path, figures):
    config = faults.pretrain_config(tmp_path / "pretrain.cfg", max_steps=12, checkpoint_every=2)
    straight = tmp_path / "straight"
    faults.run_to_end(faults.pretrain_command(config, straight), faults.child_env())
    disk = tmp_path / "disk"
    # Room for the vocabulary and two checkpoints (656 KiB each), not for a third.
    _mount_tmpfs(disk, "1700k")
    try:
        out = disk / "run"
        shutil.copytree(straight / "vocab", out / "vocab")
        result = subprocess.run(faults.pretrain_command(config, out), capture_output=True, text=True,
                                env=faults.child_env(), timeout=600)
        message = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 1, message[-2000:]
        assert "the disk is full (No space left on device)" in message, message[-2000:]
        kept = faults._checkpoints(out)
        assert kept and f"the last complete checkpoint, {out / kept[-1]}, is kept" in message, message[-2000:]
        faults.weights(out / kept[-1])  # loads
        assert not faults.temporaries(out)  # the cut write took its temporary folder with it
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        faults.run_to_end(faults.pretrain_command(config, out, resume=True), faults.child_env())
        faults.assert_same_weights(straight / "model-last", out / "model-last")
        figures["full_disk"] = {"stopped_at": message.split("at step ")[1].split(":")[0], "kept": kept[-1],
                                "resumed_bit_exact": True}
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
