"""The pretraining entry point: MLM (+ NSP) on raw text, from scratch or from a checkpoint.

One process, or several under torchrun (DDP: gloo on CPU, NCCL on GPU), each reading
its own shard. Checkpoints are HF BertForPreTraining folders plus the training state
(optimizer, schedule, step, batches read, random state), written atomically; `resume`
continues from the newest so that the run ends where an uninterrupted one would.

The parts: settings.py (the config, checked), inputs.py (the input files, checked),
build.py (tokenizer and model), runner.py (the loop), checkpoints.py, log.py (log.csv),
progress.py (what is printed) and curves.py (curves.png).
"""
import errno
import logging
import random
import shutil
from pathlib import Path
from typing import Optional, Tuple

import torch
from thinc.api import Config

from ..errors import CheckpointError
from .build import build_model, build_tokenizer
from .checkpoints import STATE_FILE, clean_temporary, latest_checkpoint
from .curves import PLOT_FILE, plot_curves
from .distributed import Distributed, init_distributed
from .distributed import barrier as _barrier
from .inputs import check_inputs
from .log import LOG_FIELDS, LOG_FILE
from .runner import Runner
from .settings import Settings

__all__ = ["pretrain", "Settings", "Distributed", "init_distributed", "latest_checkpoint", "plot_curves",
           "STATE_FILE", "LOG_FILE", "LOG_FIELDS", "PLOT_FILE"]

logger = logging.getLogger(__name__)


def pretrain(config: Config, output_dir: Path, *, resume: bool = False, gpu_id: int = -1,
             config_path: Optional[Path] = None) -> Path:
    """Run (or resume) pretraining as the config says; RETURNS the model-last folder.

    Every input (the settings, the raw and dev files, the checkpoint to continue) is
    checked before anything is written: a bad one stops the run with what is wrong and
    where, and leaves no output. A full disk stops it with a clear error, keeping the last
    complete checkpoint (`--resume` continues from it once there is space).
    config_path: the config's file, named in error messages.
    """
    source_name = str(config_path) if config_path else "config"
    settings = Settings.from_config(config, source=source_name)
    output_dir = Path(output_dir)
    if settings.from_checkpoint and settings.bert is None and not (resume and latest_checkpoint(output_dir)):
        raise ValueError(f"{source_name}: this config continues pretraining a checkpoint ([training] "
                         f"from_checkpoint = true) but [paths] bert is not set: pass --paths.bert CHECKPOINT_DIR "
                         f"(an HF BERT folder: config.json, the weights, vocab.txt or tokenizer.json), or use "
                         f"configs/pretrain.cfg to pretrain from scratch")
    use_cuda = gpu_id >= 0
    dist_info = init_distributed(use_cuda)
    device = torch.device(f"cuda:{gpu_id + dist_info.local_rank}" if use_cuda else "cpu")
    check_inputs(settings, dist_info)
    checkpoint = _checkpoint_to_resume(output_dir, resume, dist_info)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    source = checkpoint if checkpoint is not None else settings.bert
    model, model_config, tokenizer = _start(settings, source, output_dir, dist_info)
    if checkpoint is not None and settings.bert is None:  # a run from [paths] bert has that model's sizes
        _check_same_model(settings, model_config, checkpoint)
    model.to(device)
    runner = Runner(settings, model, model_config, tokenizer, device, dist_info, output_dir, source)
    if checkpoint is not None:
        runner.load_state(checkpoint)
    _run(runner, output_dir)
    return output_dir / "model-last"


def _checkpoint_to_resume(output_dir: Path, resume: bool, dist_info: Distributed) -> Optional[Path]:
    """The newest checkpoint with `resume` (after cleaning up what a killed run left); an
    error without `resume` when the folder holds checkpoints."""
    if dist_info.main:
        clean_temporary(output_dir)
    checkpoint = latest_checkpoint(output_dir) if resume else None
    if resume and checkpoint is None:
        logger.warning("--resume: no checkpoint in %s, starting from the beginning", output_dir)
    if not resume and latest_checkpoint(output_dir) is not None:
        raise ValueError(f"{output_dir} already holds checkpoints: pass --resume to continue that run, "
                         f"or choose another output folder")
    return checkpoint


def _check_same_model(settings: Settings, config, checkpoint: Path) -> None:
    """A resumed run goes on with its checkpoint's model: a [model] setting that differs
    from it is an error (it was ignored, silently)."""
    for key, value in settings.model.items():
        if key in ("vocab_size", "pad_token_id"):  # the vocabulary's, whatever [model] says
            continue
        have = getattr(config, key, value)
        if have != value:
            raise ValueError(f"{checkpoint}: the run being resumed has {key} = {have!r}, not {value!r} as [model] "
                             f"now says: resume with the settings it began with, or start a new run in another folder")


def _start(settings: Settings, source: Optional[Path], output_dir: Path, dist_info: Distributed) -> Tuple:
    """RETURNS (model, its config, tokenizer), the model on the CPU; makes the output
    folder, and removes it again when it made it and something fails."""
    created = not output_dir.exists()
    try:
        if source is not None:  # read and checked before the output folder is made
            tokenizer = build_tokenizer(settings, source, output_dir, dist_info)
            model, model_config = build_model(settings, source, tokenizer)
        if dist_info.main:
            output_dir.mkdir(parents=True, exist_ok=True)
        _barrier(dist_info)
        if source is None:  # a vocabulary learnt from the raw text (kept in OUTPUT_DIR/vocab)
            tokenizer = build_tokenizer(settings, source, output_dir, dist_info)
            model, model_config = build_model(settings, source, tokenizer)
    except BaseException:
        if created and dist_info.main:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    return model, model_config, tokenizer


def _run(runner: Runner, output_dir: Path) -> None:
    """The training loop; a full disk becomes a CheckpointError naming the checkpoint kept."""
    try:
        runner.run()
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        last = latest_checkpoint(output_dir)
        kept = f"the last complete checkpoint, {last}, is kept" if last else "no checkpoint was complete yet"
        raise CheckpointError(output_dir, f"the disk is full ({err.strerror}) at step {runner.step}: {kept}. "
                                          f"Free some space and run again with --resume.") from None
