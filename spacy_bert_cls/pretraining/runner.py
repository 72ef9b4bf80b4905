"""The training loop of a pretraining run, from its first or a resumed step to model-last.

AdamW with linear warmup and decay, gradient accumulation and clipping, mixed precision,
DDP; logging, dev evaluation, checkpoints and, at the end, model-last and the curves.
Resumed from a checkpoint, it replays the batch stream and restores the random state, so
that it ends where an uninterrupted run would."""
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import torch
import torch.nn.functional as F

from ..checkpoint.io import atomic_dir
from ..pytorch.config import BertConfig
from ..pytorch.heads import BertForPreTraining
from ..tokenization import PieceTokenizer
from .checkpoints import read_state, save_checkpoint, write_model
from .curves import PLOT_FILE, plot_curves
from .distributed import Distributed, barrier
from .instances import NO_NSP, Batch, InstanceStream, continuation_table, iter_batches, special_ids
from .log import LOG_FILE, append_row, read_log, truncate_log
from .masking import mask_pieces, step_generator
from .progress import show_progress
from .settings import Settings

# The pretrain run's messages keep the logger name they had before train.py was split.
logger = logging.getLogger("spacy_bert_cls.pretraining.train")

# Summed over the steps of a logged window (reset to 0 after each log row).
WINDOW_KEYS = ("loss", "mlm", "n_masked", "nsp", "nsp_right", "n_pairs", "pieces", "seconds", "steps")


class Runner:
    def __init__(self, settings: Settings, model: BertForPreTraining, model_config: BertConfig,
                 tokenizer: PieceTokenizer, device: torch.device, dist_info: Distributed, output_dir: Path,
                 source: Optional[Path]) -> None:
        self.s, self.model, self.model_config, self.tokenizer = settings, model, model_config, tokenizer
        self.device, self.dist, self.output_dir, self.source = device, dist_info, output_dir, source
        self.step = self.batches_read = 0
        self.log_path = output_dir / LOG_FILE
        self.started = time.perf_counter()
        self.elapsed_before = 0.0  # seconds of training before a resumed run's checkpoint
        decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "norm" in n)]
        no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "norm" in n]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=settings.learn_rate)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.precision = self._precision()
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == torch.float16 else None
        self.train_model = model
        if dist_info.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=not settings.nsp)  # the NSP head and pooler idle without NSP
        self.specials = special_ids(tokenizer)
        self.continuation = continuation_table(tokenizer)
        self.random_ids = torch.tensor(
            [i for i in range(tokenizer.vocab_size) if i not in set(self.specials)], dtype=torch.long)

    def _lr_factor(self, step: int) -> float:
        warmup, total = self.s.warmup_steps, self.s.max_steps
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    def _precision(self) -> Optional[torch.dtype]:
        choice = self.s.mixed_precision
        if choice == "none" or (choice == "auto" and self.device.type != "cuda"):
            return None
        if choice == "fp16" and self.device.type != "cuda":
            raise ValueError("mixed_precision = fp16 needs a GPU (--gpu-id); use bf16 on the CPU")
        if choice == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if choice == "bf16" else torch.float16

    def batches(self, path: Path, seed: int, epochs: Optional[int] = None,
                rank: Optional[int] = None, world_size: Optional[int] = None) -> Iterator[Batch]:
        stream = InstanceStream(path, self.tokenizer, max_length=self.s.max_length, nsp=self.s.nsp, seed=seed,
                                short_seq_probability=self.s.short_seq_probability,
                                rank=self.dist.rank if rank is None else rank,
                                world_size=self.dist.world_size if world_size is None else world_size,
                                epochs=epochs)
        return iter_batches(stream, self.s.batch_size, self.tokenizer.pad_id, self.specials, self.continuation)

    def losses(self, model, batch: Batch, generator: torch.Generator) -> Dict[str, torch.Tensor]:
        masked = mask_pieces(batch.input_ids, batch.maskable, mask_id=self.tokenizer.mask_id,
                             random_ids=self.random_ids, generator=generator, rate=self.s.mlm_probability,
                             continuation=batch.continuation if self.s.whole_word_masking else None)
        to = self.device
        with torch.autocast(self.device.type, dtype=self.precision or torch.float32,
                            enabled=self.precision is not None):
            mlm_logits, nsp_logits = model(masked.input_ids.to(to), batch.attention_mask.to(to),
                                           batch.token_type_ids.to(to), masked.positions.to(to))
        out = {"mlm": F.cross_entropy(mlm_logits.float(), masked.labels.to(to), reduction="sum"),
               "n_masked": torch.tensor(float(len(masked.labels)))}
        if self.s.nsp:
            labels = batch.nsp_labels.to(to)
            out["nsp"] = F.cross_entropy(nsp_logits.float(), labels, ignore_index=NO_NSP)
            out["nsp_right"] = (nsp_logits.argmax(-1) == labels).float().sum()
            out["n_pairs"] = torch.tensor(float((labels != NO_NSP).sum()))
        return out

    def run(self) -> None:
        s = self.s
        batches = self.batches(s.raw, s.seed)
        for _ in range(self.batches_read):  # replay the stream up to where the checkpoint was
            next(batches)
        window = {key: 0.0 for key in WINDOW_KEYS}
        window["pieces"] = window["steps"] = 0
        # A resumed run's clock goes on from its log's last row (see load_state).
        self.started = time.perf_counter() - self.elapsed_before
        if self.step == 0 and s.dev is not None and self.dist.main:
            append_row(self.log_path, self.evaluate(), self.started, kind="eval")
        while self.step < s.max_steps:
            tick = time.perf_counter()
            self._train_step(batches, window)
            window["seconds"] += time.perf_counter() - tick
            window["steps"] += 1
            window = self._report(window)
            if self.step % s.checkpoint_every == 0 or self.step == s.max_steps:
                self.save_checkpoint()
        if self.dist.main:
            self.save_model(self.output_dir / "model-last")
            plot_curves(self.log_path, self.output_dir / PLOT_FILE)
        barrier(self.dist)

    def _train_step(self, batches: Iterator[Batch], window: Dict[str, float]) -> None:
        """One optimizer step over accumulate_gradient batches; their losses added to `window`."""
        s = self.s
        self.train_model.train()
        for micro in range(s.accumulate_gradient):
            batch = next(batches)
            self.batches_read += 1
            generator = step_generator(s.seed, self.step * s.accumulate_gradient + micro, self.dist.rank)
            out = self.losses(self.train_model, batch, generator)
            mlm_mean = out["mlm"] / out["n_masked"].clamp(min=1)
            loss = mlm_mean + (out["nsp"] if s.nsp else 0.0)
            scaled = loss / s.accumulate_gradient
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            self._add_to_window(window, out, float(loss.detach()), batch.n_pieces)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        self.step += 1

    def _add_to_window(self, window: Dict[str, float], out: Dict[str, torch.Tensor], loss: float,
                       n_pieces: int) -> None:
        values = {k: float(v.detach()) for k, v in out.items()}
        window["loss"] += loss / self.s.accumulate_gradient
        window["mlm"] += values["mlm"]
        window["n_masked"] += values["n_masked"]
        if self.s.nsp:
            window["nsp"] += values["nsp"] / self.s.accumulate_gradient
            window["nsp_right"] += values["nsp_right"]
            window["n_pairs"] += values["n_pairs"]
        window["pieces"] += n_pieces

    def _report(self, window: Dict[str, float]) -> Dict[str, float]:
        """The log row of the window when a log step is reached (RETURNS the window to go on
        with: a new one after a row), and the dev evaluation when an eval step is."""
        s = self.s
        if self.step % s.log_every == 0 or self.step == s.max_steps:
            row = self._window_row(window)
            if self.dist.main:
                show_progress(row, s.max_steps)
                append_row(self.log_path, row, self.started)
            window = {k: 0 for k in window}
        if s.dev is not None and (self.step % s.eval_frequency == 0 or self.step == s.max_steps) and self.dist.main:
            row = self.evaluate()
            show_progress(row, s.max_steps, kind="eval")
            append_row(self.log_path, row, self.started, kind="eval")
        return window

    def _window_row(self, window: Dict[str, float]) -> Dict[str, Any]:
        mlm = window["mlm"] / max(1.0, window["n_masked"])
        # Pieces per second of this process, times the processes (their shards run in parallel).
        row = {"step": self.step, "loss": window["loss"] / window["steps"], "mlm_loss": mlm,
               "mlm_perplexity": math.exp(min(mlm, 50.0)), "learning_rate": self.schedule.get_last_lr()[0],
               "pieces_per_second": window["pieces"] * self.dist.world_size / max(window["seconds"], 1e-9)}
        if self.s.nsp:
            row["nsp_loss"] = window["nsp"] / window["steps"]
            row["nsp_accuracy"] = window["nsp_right"] / max(1.0, window["n_pairs"])
        return row

    @torch.no_grad()
    def evaluate(self) -> Dict[str, Any]:
        """MLM perplexity (and NSP accuracy) on the dev file: fixed masks, the first eval_batches batches."""
        self.model.eval()
        totals = {"mlm": 0.0, "n_masked": 0.0, "nsp_right": 0.0, "n_pairs": 0.0}
        batches = self.batches(self.s.dev, seed=12345, epochs=1, rank=0, world_size=1)
        for i, batch in zip(range(self.s.eval_batches), batches):
            out = self.losses(self.model, batch, step_generator(12345, i))
            for key in totals:
                if key in out:
                    totals[key] += float(out[key])
        self.model.train()
        mlm = totals["mlm"] / max(1.0, totals["n_masked"])
        row = {"step": self.step, "mlm_loss": mlm, "mlm_perplexity": math.exp(min(mlm, 50.0))}
        if self.s.nsp:
            row["nsp_accuracy"] = totals["nsp_right"] / max(1.0, totals["n_pairs"])
        return row

    def save_model(self, folder: Path) -> None:
        """An HF BertForPreTraining folder with the tokenizer files, written atomically."""
        with atomic_dir(folder) as tmp:
            self._write_model(tmp)

    def _write_model(self, folder: Path) -> None:
        tokenizer_source = self.source if self.source is not None else self.output_dir / "vocab"
        write_model(folder, self.model, self.model_config, self.tokenizer, tokenizer_source, self.s.lowercase)

    def save_checkpoint(self) -> None:
        if self.dist.main:
            state = {
                "step": self.step,
                "batches_read": self.batches_read,
                "world_size": self.dist.world_size,
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "python_rng": random.getstate(),
            }
            save_checkpoint(self.output_dir, self.step, state, self._write_model, self.s.keep_checkpoints)
        barrier(self.dist)

    def load_state(self, checkpoint: Path) -> None:
        state = read_state(checkpoint, self.dist.world_size)
        self.step = int(state["step"])
        self.batches_read = int(state["batches_read"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(state["python_rng"])
        if self.dist.main:
            truncate_log(self.output_dir / LOG_FILE, self.step)
            rows = read_log(self.output_dir / LOG_FILE)
            self.elapsed_before = float(rows[-1]["elapsed_seconds"] or 0.0) if rows else 0.0
        logger.info("Resuming from %s at step %d", checkpoint, self.step)
