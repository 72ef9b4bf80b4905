"""A pretraining run's checkpoints: writing, reading, finding the newest, keeping the last few.

OUTPUT_DIR/checkpoint-NNNNNNNN folders (an HF BertForPreTraining folder with the tokenizer
files, plus the training state), written atomically; and the clean-up of what a killed run
left half-written."""
import io
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from ..checkpoint.hf import save_pretraining_checkpoint
from ..checkpoint.io import atomic_dir, recover_dir, write_bytes
from ..pytorch.config import BertConfig
from ..tokenization import PieceTokenizer
from ..tokenization.wordpiece import (SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, TOKENIZER_JSON, VOCAB_TXT,
                                      save_piece_tokenizer)

STATE_FILE = "training_state.pt"
TOKENIZER_FILES = (TOKENIZER_JSON, VOCAB_TXT, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP)


def latest_checkpoint(output_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint folder (checkpoint-NNNNNNNN with its training state)."""
    if not output_dir.is_dir():
        return None
    found = sorted(p for p in output_dir.glob("checkpoint-*") if (p / STATE_FILE).is_file())
    return found[-1] if found else None


def clean_temporary(output_dir: Path) -> None:
    """Remove what a killed run left half-written (its temporary folders), and finish a
    folder swap it left half done."""
    if not output_dir.is_dir():
        return
    for previous in output_dir.glob(".*.previous"):
        recover_dir(output_dir / previous.name[1:-len(".previous")])
    for path in list(output_dir.glob(".tmp-*")) + list(output_dir.glob(".*.tmp")):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def write_model(folder: Path, model: torch.nn.Module, model_config: BertConfig, tokenizer: PieceTokenizer,
                tokenizer_source: Path, lowercase: bool) -> None:
    """The weights and config, and the tokenizer: its files copied from `tokenizer_source`
    when they are there, written from `tokenizer` when not."""
    save_pretraining_checkpoint(folder, model_config, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    if all((tokenizer_source / name).is_file() for name in (TOKENIZER_JSON, VOCAB_TXT)):
        for name in TOKENIZER_FILES:
            if (tokenizer_source / name).is_file():
                shutil.copyfile(tokenizer_source / name, folder / name)
    else:
        save_piece_tokenizer(tokenizer, folder, lowercase)


def save_checkpoint(output_dir: Path, step: int, state: Dict[str, Any], write_model_to: Callable[[Path], None],
                    keep: int) -> None:
    """OUTPUT_DIR/checkpoint-<step>: the model (write_model_to(folder)) and the training
    state; then only the newest `keep` checkpoints are kept."""
    # The folder appears whole, training state included, or not at all.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_dir(output_dir / f"checkpoint-{step:08d}") as tmp:
        write_model_to(tmp)
        write_bytes(tmp / STATE_FILE, buffer.getvalue())
    for old in sorted(output_dir.glob("checkpoint-*"))[:-keep]:
        # Renamed away first: a kill during the removal leaves no half checkpoint.
        trash = output_dir / f".{old.name}.pid{os.getpid()}.removed.tmp"
        os.replace(old, trash)
        shutil.rmtree(trash, ignore_errors=True)


def read_state(checkpoint: Path, world_size: int) -> Dict[str, Any]:
    """The checkpoint's training state; a ValueError when another number of processes wrote it."""
    state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    if state["world_size"] != world_size:
        raise ValueError(f"{checkpoint} was written by {state['world_size']} process(es); resume it with "
                         f"the same number (now {world_size})")
    return state
