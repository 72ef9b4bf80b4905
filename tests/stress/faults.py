"""Killing processes at chosen moments, and checking what they leave behind.

Used by the stress suite (many kill points) and by the default suite (a few).
"""
import hashlib
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from safetensors.torch import load_file
from thinc.api import Config

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "corpus" / "raw" / "pretrain.txt"
WRITE_DELAY_ENV = "SPACY_BERT_CLS_TEST_WRITE_DELAY"
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
              "max_position_embeddings": 64}


def tree_digest(folder: Path) -> Dict[str, str]:
    """{relative path: sha256} of every file below `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> List[Path]:
    """Hidden temporary entries of atomic writes (".NAME.pidN.XXXX.tmp", ".NAME.XXXX.tmp")."""
    return [p for p in folder.glob(".*") if p.name.endswith(".tmp")] if folder.is_dir() else []


# Pretraining ------------------------------------------------------------------------------

def pretrain_config(path: Path, max_steps: int = 24, checkpoint_every: int = 2) -> Path:
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
    config["paths"]["raw"] = str(RAW)
    config["paths"]["dev"] = str(RAW)
    config["model"].update(TINY_MODEL)
    config["tokenizer"]["vocab_size"] = 800
    config["objective"]["max_length"] = 64
    config["training"].update({"max_steps": max_steps, "batch_size": 8, "warmup_steps": 3, "log_every": 2,
                               "eval_frequency": 12, "eval_batches": 2, "checkpoint_every": checkpoint_every,
                               "keep_checkpoints": 2})
    config.to_disk(path)
    return path


def pretrain_command(config: Path, output: Path, resume: bool = False) -> List[str]:
    return ([sys.executable, "-m", "spacy_bert_cls", "pretrain", str(config), str(output)]
            + (["--resume"] if resume else []))


def child_env(write_delay: float = 0.0) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop(WRITE_DELAY_ENV, None)
    if write_delay:
        env[WRITE_DELAY_ENV] = str(write_delay)
    return env


def run_to_end(command: List[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _checkpoints(output: Path) -> List[str]:
    return sorted(p.name for p in output.glob("checkpoint-*")) if output.is_dir() else []


def kill_when(command: List[str], env: dict, condition: Callable[[], bool], delay: float,
              timeout: float = 300) -> dict:
    """Start `command`; once `condition()` holds, wait `delay` seconds and SIGKILL it.

    RETURNS: what happened: killed (or finished first), and whether an atomic write was under
        way at the moment of the kill (a temporary entry existed).
    """
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    try:
        while not condition():
            if process.poll() is not None:
                return {"killed": False, "returncode": process.returncode, "stderr": process.stderr.read()[-2000:]}
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the kill point never came: {' '.join(command)}")
            time.sleep(0.005)
        time.sleep(delay)
        if process.poll() is not None:
            return {"killed": False, "returncode": process.returncode, "stderr": ""}
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return {"killed": True}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def kill_plan(seed: int, n_kills: int, max_steps: int, checkpoint_every: int) -> List[dict]:
    """Seeded kill points, in order: during a checkpoint write, while training between
    checkpoints, while starting up (or resuming), and last during model-last's write.
    Each of the first n_kills - 1 has its own checkpoint step, later than the one before."""
    rng = random.Random(seed)
    steps = list(range(checkpoint_every, max_steps, checkpoint_every))
    if len(steps) < n_kills - 1:
        raise ValueError(f"{n_kills} kill points need max_steps >= {checkpoint_every * n_kills}")
    kinds = (["checkpoint-write", "training", "startup"] * n_kills)[: n_kills - 1]
    rng.shuffle(kinds)
    plan = []
    for kind, step in zip(kinds[: n_kills - 1], sorted(rng.sample(steps, n_kills - 1))):
        delay = rng.uniform(0.0, 3.0) if kind == "startup" else rng.uniform(0.0, 0.4)
        plan.append({"kind": kind, "step": step, "delay": round(delay, 3)})
    plan.append({"kind": "model-last-write", "step": max_steps, "delay": round(rng.uniform(0.0, 0.3), 3)})
    return plan


def condition_for(point: dict, output: Path) -> Callable[[], bool]:
    name = f"checkpoint-{point['step']:08d}"
    if point["kind"] == "checkpoint-write":  # its temporary folder exists
        return lambda: any(p.name.startswith(f".{name}.") for p in temporaries(output))
    if point["kind"] == "training":  # just after that checkpoint is complete
        return lambda: (output / name).is_dir()
    if point["kind"] == "model-last-write":
        return lambda: any(p.name.startswith(".model-last.") for p in temporaries(output))
    return lambda: True  # startup: `delay` after the start


def weights(folder: Path) -> Dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs between {a} and {b}"


def killed_pretraining(tmp_path: Path, n_kills: int, seed: int = 0, max_steps: int = 24,
                       checkpoint_every: int = 2, write_delay: float = 0.15) -> dict:
    """An uninterrupted run, and one SIGKILLed at `n_kills` seeded points (each followed by
    --resume) that must end with the same model-last, bit for bit."""
    max_steps = max(max_steps, checkpoint_every * (n_kills + 1))
    config = pretrain_config(tmp_path / "pretrain.cfg", max_steps, checkpoint_every)
    straight = tmp_path / "straight"
    run_to_end(pretrain_command(config, straight), child_env())
    interrupted = tmp_path / "interrupted"
    # tokenizers' WordPiece trainer breaks ties differently from run to run: a run keeps its
    # vocabulary in OUTPUT/vocab and a resume reuses it; both runs share one here.
    import shutil

    shutil.copytree(straight / "vocab", interrupted / "vocab")
    survived = []
    resume = False
    for point in kill_plan(seed, n_kills, max_steps, checkpoint_every):
        before = _checkpoints(interrupted)
        outcome = kill_when(pretrain_command(config, interrupted, resume=resume), child_env(write_delay),
                            condition_for(point, interrupted), point["delay"])
        if not outcome["killed"]:
            raise AssertionError(f"run ended before the kill point {point}: {outcome}")
        leftovers = [p.name for p in temporaries(interrupted)]
        complete = _checkpoints(interrupted)
        # Whatever the moment, every checkpoint folder there is complete and loads.
        for name in complete:
            assert (interrupted / name / "training_state.pt").is_file(), name
            weights(interrupted / name)
        survived.append({**point, "mid_write": bool(leftovers), "checkpoints_before": before[-1:],
                         "checkpoints_after": complete[-1:]})
        resume = True
    run_to_end(pretrain_command(config, interrupted, resume=True), child_env())
    assert_same_weights(straight / "model-last", interrupted / "model-last")
    assert not temporaries(interrupted), temporaries(interrupted)
    rows = (interrupted / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,kind,") and all(r.count(",") == rows[0].count(",") for r in rows)
    return {"kill_points": survived, "n_killed": len(survived),
            "n_mid_write": sum(p["mid_write"] for p in survived)}


# Saving in a forked child ------------------------------------------------------------------

def _save_forever(save: Callable[[int], None]) -> None:
    i = 0
    while True:
        save(i % 2)
        i += 1


def kill_saves(save: Callable[[int], None], target: Path, versions: List[Dict[str, str]], n_kills: int,
               seed: int, max_delay: float, check: Optional[Callable[[Path], None]] = None) -> dict:
    """Fork a child that saves version 0, 1, 0, 1 ... to `target` without end; SIGKILL it at
    seeded random moments, `n_kills` times. After each kill `target` must be exactly one of
    `versions` (tree digests) and pass `check` (it loads).

    RETURNS: counts of kills, of kills during a write, and of broken results.
    """
    rng = random.Random(seed)
    context = multiprocessing.get_context("fork")
    outcome = {"kills": 0, "mid_write": 0, "broken": 0, "errors": []}
    for _ in range(n_kills):
        child = context.Process(target=_save_forever, args=(save,), daemon=True)
        child.start()
        deadline = time.monotonic() + 120
        while not target.exists():  # the first save completes
            if not child.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"the saving child stopped (exit code {child.exitcode})")
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, max_delay))
        in_flight = bool(temporaries(target.parent))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        outcome["kills"] += 1
        outcome["mid_write"] += in_flight or bool(temporaries(target.parent))
        try:
            digest = tree_digest(target)
            if digest not in versions:
                raise AssertionError(f"{target} is neither version: {sorted(digest)[:5]}...")
            if check is not None:
                check(target)
        except Exception as err:  # noqa: BLE001 - counted and reported
            outcome["broken"] += 1
            outcome["errors"].append(f"{type(err).__name__}: {str(err)[:200]}")
    return outcome
