"""The pretraining loop: MLM (+ NSP) on raw text, from scratch or from a checkpoint.

One process, or several under torchrun (DDP: gloo on CPU, NCCL on GPU), each reading
its own shard. Checkpoints are HF BertForPreTraining folders plus the training state
(optimizer, schedule, step, batches read, random state), written atomically; `resume`
continues from the newest so that the run ends where an uninterrupted one would.
"""
import csv
import errno
import io
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from thinc.api import Config

from ..checkpoint.hf import save_pretraining_checkpoint
from ..checkpoint.io import atomic_dir, atomic_path, recover_dir, write_bytes
from ..errors import CheckpointError, DataError
from ..pytorch.config import BertConfig
from ..pytorch.heads import BertForPreTraining
from ..tokenization import PieceTokenizer, load_piece_tokenizer
from ..tokenization.wordpiece import (SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, TOKENIZER_JSON, VOCAB_TXT,
                                      save_piece_tokenizer, train_wordpiece)
from .data import iter_paragraphs, validate_raw_file, warn_if_tagged
from .instances import (NO_NSP, Batch, InstanceStream, continuation_table, iter_batches, special_ids)
from .masking import mask_pieces, step_generator
from .model import load_pretraining_model

logger = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"
LOG_FILE = "log.csv"
PLOT_FILE = "curves.png"
LOG_FIELDS = ("step", "kind", "loss", "mlm_loss", "mlm_perplexity", "nsp_loss", "nsp_accuracy",
              "learning_rate", "pieces_per_second", "elapsed_seconds")
TOKENIZER_FILES = (TOKENIZER_JSON, VOCAB_TXT, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP)


@dataclass
class Settings:
    """The [paths], [model], [tokenizer], [objective] and [training] sections, checked."""

    raw: Path
    dev: Optional[Path]
    bert: Optional[Path]
    model: Dict[str, Any]
    vocab_size: int
    lowercase: bool
    min_frequency: int
    tokenizer_train_limit: int
    max_length: int
    mlm_probability: float
    whole_word_masking: bool
    nsp: bool
    short_seq_probability: float
    seed: int
    batch_size: int
    gradient_accumulation: int
    learning_rate: float
    weight_decay: float
    warmup_steps: int
    max_steps: int
    max_grad_norm: float
    mixed_precision: str
    log_every: int
    eval_every: int
    eval_batches: int
    checkpoint_every: int
    keep_checkpoints: int
    # True in configs that continue a checkpoint (pretrain_continue.cfg): [paths] bert is required.
    from_checkpoint: bool = False

    @classmethod
    def from_config(cls, config: Config, source: str = "config") -> "Settings":
        """source: what to call the config in messages (its file name)."""
        def get(section: str, key: str, kind, default=...):
            value = config.get(section, {}).get(key, default)
            if value is ...:
                raise ValueError(f"{source}: [{section}] {key} is missing")
            if value is None and default is None:
                return None
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if kind is Path:
                return Path(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{source}: [{section}] {key} must be {kind.__name__}, got {value!r}")
            return value

        known = {
            "paths": {"raw", "dev", "bert", "vectors", "init_tok2vec"},
            "tokenizer": {"vocab_size", "lowercase", "min_frequency", "train_limit"},
            "objective": {"max_length", "mlm_probability", "whole_word_masking", "nsp", "short_seq_probability"},
            "training": {"seed", "batch_size", "gradient_accumulation", "learning_rate", "weight_decay",
                         "warmup_steps", "max_steps", "max_grad_norm", "mixed_precision", "log_every",
                         "eval_every", "eval_batches", "checkpoint_every", "keep_checkpoints",
                         "from_checkpoint"},
        }
        for section, keys in known.items():
            unknown = set(config.get(section, {})) - keys
            if unknown:
                raise ValueError(f"{source}: unknown setting(s) in [{section}]: {', '.join(sorted(unknown))}")
        model = dict(config.get("model", {}))
        if model:
            unknown = set(model) - set(BertConfig.__dataclass_fields__) - {"vocab_size"}
            if unknown:
                raise ValueError(f"{source}: unknown setting(s) in [model]: {', '.join(sorted(unknown))}")
        raw = config.get("paths", {}).get("raw")
        if raw is None:
            raise ValueError(f"{source}: [paths] raw is not set: pass --paths.raw FILE (.txt or .jsonl)")
        settings = cls(
            raw=Path(raw), dev=get("paths", "dev", Path, None), bert=get("paths", "bert", Path, None),
            model=model,
            vocab_size=get("tokenizer", "vocab_size", int, 8000), lowercase=get("tokenizer", "lowercase", bool, True),
            min_frequency=get("tokenizer", "min_frequency", int, 2),
            tokenizer_train_limit=get("tokenizer", "train_limit", int, 0),
            max_length=get("objective", "max_length", int, 128),
            mlm_probability=get("objective", "mlm_probability", float, 0.15),
            whole_word_masking=get("objective", "whole_word_masking", bool, False),
            nsp=get("objective", "nsp", bool, True),
            short_seq_probability=get("objective", "short_seq_probability", float, 0.1),
            seed=get("training", "seed", int, 0), batch_size=get("training", "batch_size", int, 32),
            gradient_accumulation=get("training", "gradient_accumulation", int, 1),
            learning_rate=get("training", "learning_rate", float, 1e-4),
            weight_decay=get("training", "weight_decay", float, 0.01),
            warmup_steps=get("training", "warmup_steps", int, 0), max_steps=get("training", "max_steps", int, 1000),
            max_grad_norm=get("training", "max_grad_norm", float, 1.0),
            mixed_precision=get("training", "mixed_precision", str, "auto"),
            log_every=get("training", "log_every", int, 10), eval_every=get("training", "eval_every", int, 500),
            eval_batches=get("training", "eval_batches", int, 50),
            checkpoint_every=get("training", "checkpoint_every", int, 500),
            keep_checkpoints=get("training", "keep_checkpoints", int, 2),
            from_checkpoint=get("training", "from_checkpoint", bool, False),
        )
        for name in ("batch_size", "gradient_accumulation", "max_steps", "log_every", "eval_every",
                     "eval_batches", "checkpoint_every", "keep_checkpoints", "vocab_size"):
            if getattr(settings, name) < 1:
                raise ValueError(f"{source}: {name} must be at least 1, got {getattr(settings, name)}")
        if settings.mixed_precision not in ("auto", "none", "bf16", "fp16"):
            raise ValueError(f"{source}: [training] mixed_precision must be auto, none, bf16 or fp16, "
                             f"got {settings.mixed_precision!r}")
        return settings


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> Distributed:
    """torchrun's environment -> a process group (gloo on CPU, NCCL on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _barrier(dist_info: Distributed) -> None:
    if dist_info.world_size > 1:
        torch.distributed.barrier()


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
    for path, processes in ((settings.raw, dist_info.world_size), (settings.dev, 1)):
        if path is not None:
            n_documents = validate_raw_file(path)
            if dist_info.main:
                warn_if_tagged(path)
            if settings.nsp:
                _check_nsp_documents(path, n_documents, processes, warn=dist_info.main)
    if dist_info.main:
        _clean_temporary(output_dir)
    checkpoint = latest_checkpoint(output_dir) if resume else None
    if resume and checkpoint is None:
        logger.warning("--resume: no checkpoint in %s, starting from the beginning", output_dir)
    if not resume and latest_checkpoint(output_dir) is not None:
        raise ValueError(f"{output_dir} already holds checkpoints: pass --resume to continue that run, "
                         f"or choose another output folder")
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    source = checkpoint if checkpoint is not None else settings.bert
    created = not output_dir.exists()
    try:
        if source is not None:  # read and checked before the output folder is made
            tokenizer = load_piece_tokenizer(source)
            model, model_config = _model(settings, source, tokenizer)
        if dist_info.main:
            output_dir.mkdir(parents=True, exist_ok=True)
        _barrier(dist_info)
        if source is None:  # a vocabulary learnt from the raw text (kept in OUTPUT_DIR/vocab)
            tokenizer = _tokenizer(settings, source, output_dir, dist_info)
            model, model_config = _model(settings, source, tokenizer)
    except BaseException:
        if created and dist_info.main:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    model.to(device)
    runner = _Runner(settings, model, model_config, tokenizer, device, dist_info, output_dir, source)
    if checkpoint is not None:
        runner.load_state(checkpoint)
    try:
        runner.run()
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        last = latest_checkpoint(output_dir)
        kept = f"the last complete checkpoint, {last}, is kept" if last else "no checkpoint was complete yet"
        raise CheckpointError(output_dir, f"the disk is full ({err.strerror}) at step {runner.step}: {kept}. "
                                          f"Free some space and run again with --resume.") from None
    return output_dir / "model-last"


def _tokenizer(settings: Settings, source: Optional[Path], output_dir: Path, dist_info: Distributed) -> PieceTokenizer:
    if source is not None:
        return load_piece_tokenizer(source)
    vocab_dir = output_dir / "vocab"
    if dist_info.main and not (vocab_dir / TOKENIZER_JSON).is_file():
        paragraphs = iter_paragraphs(settings.raw)
        if settings.tokenizer_train_limit:
            paragraphs = (p for i, p in zip(range(settings.tokenizer_train_limit), paragraphs))
        tokenizer = train_wordpiece(paragraphs, settings.vocab_size, lowercase=settings.lowercase,
                                    min_frequency=settings.min_frequency)
        save_piece_tokenizer(tokenizer, vocab_dir, settings.lowercase)
    _barrier(dist_info)
    return load_piece_tokenizer(vocab_dir)


def _model(settings: Settings, source: Optional[Path], tokenizer: PieceTokenizer) -> Tuple[BertForPreTraining, BertConfig]:
    if source is None:
        sizes = {**settings.model, "vocab_size": tokenizer.vocab_size,
                 "max_position_embeddings": max(settings.model.get("max_position_embeddings", 512), settings.max_length),
                 "pad_token_id": tokenizer.pad_id}
        config = BertConfig.from_dict(sizes)
        return BertForPreTraining(config), config
    model, config, _ = load_pretraining_model(source)
    if tokenizer.vocab_size != config.vocab_size:
        tokenizer_file = source / (TOKENIZER_JSON if (source / TOKENIZER_JSON).is_file() else VOCAB_TXT)
        raise CheckpointError(tokenizer_file, f"the tokenizer has {tokenizer.vocab_size} entries but config.json "
                                              f"says vocab_size = {config.vocab_size}: the vocabulary does not "
                                              f"belong to these weights")
    if settings.max_length > config.max_position_embeddings:
        raise ValueError(f"[objective] max_length {settings.max_length} is over the checkpoint's "
                         f"max_position_embeddings ({config.max_position_embeddings})")
    return model, config


# Under this many documents (per process), NSP's random pairs come from too few to say much.
FEW_NSP_DOCUMENTS = 50


def _check_nsp_documents(path: Path, n_documents: int, processes: int, warn: bool = True) -> None:
    """NSP draws a random second segment from another document of the same shard: each
    process needs two documents at least (DataError, before anything is written); a warning
    when there are few."""
    per_process = f" ({n_documents // processes} per process)" if processes > 1 else ""
    found = f"{n_documents} document{'s' if n_documents != 1 else ''}"
    if n_documents < 2 * processes:
        need = f"at least {2 * processes} (2 for each of {processes} processes)" if processes > 1 else "at least 2"
        raise DataError(path, None, f"{found} found, but next-sentence prediction needs {need}: its "
                                    f"random second segments come from another document. Documents are "
                                    f"separated by blank lines in .txt files and are one per line in .jsonl "
                                    f"files; split the text into documents, or pass --objective.nsp false "
                                    f"to train MLM only")
    if warn and n_documents // processes < FEW_NSP_DOCUMENTS:
        logger.warning("%s has only %s%s: next-sentence prediction draws its random second segments from "
                       "so few that its pairs repeat and its accuracy says little; use more documents "
                       "(separated by blank lines in .txt, one per line in .jsonl), or --objective.nsp false "
                       "to train MLM only", path, found, per_process)


def latest_checkpoint(output_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint folder (checkpoint-NNNNNNNN with its training state)."""
    if not output_dir.is_dir():
        return None
    found = sorted(p for p in output_dir.glob("checkpoint-*") if (p / STATE_FILE).is_file())
    return found[-1] if found else None


def _clean_temporary(output_dir: Path) -> None:
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


class _Runner:
    def __init__(self, settings: Settings, model: BertForPreTraining, model_config: BertConfig,
                 tokenizer: PieceTokenizer, device: torch.device, dist_info: Distributed, output_dir: Path,
                 source: Optional[Path]) -> None:
        self.s = settings
        self.model = model
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.device = device
        self.dist = dist_info
        self.output_dir = output_dir
        self.source = source
        self.step = 0
        self.batches_read = 0
        decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "norm" in n)]
        no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "norm" in n]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=settings.learning_rate)
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
        log_path = self.output_dir / LOG_FILE
        progress = self._progress()
        window = {"loss": 0.0, "mlm": 0.0, "n_masked": 0.0, "nsp": 0.0, "nsp_right": 0.0, "n_pairs": 0.0,
                  "pieces": 0, "seconds": 0.0, "steps": 0}
        started = time.perf_counter()
        if self.step == 0 and s.dev is not None and self.dist.main:
            self._log(log_path, self.evaluate(), started, kind="eval")
        while self.step < s.max_steps:
            tick = time.perf_counter()
            self.train_model.train()
            for micro in range(s.gradient_accumulation):
                batch = next(batches)
                self.batches_read += 1
                generator = step_generator(s.seed, self.step * s.gradient_accumulation + micro, self.dist.rank)
                out = self.losses(self.train_model, batch, generator)
                mlm_mean = out["mlm"] / out["n_masked"].clamp(min=1)
                loss = mlm_mean + (out["nsp"] if s.nsp else 0.0)
                scaled = loss / s.gradient_accumulation
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
                values = {k: float(v.detach()) for k, v in out.items()}
                window["loss"] += float(loss.detach()) / s.gradient_accumulation
                window["mlm"] += values["mlm"]
                window["n_masked"] += values["n_masked"]
                if s.nsp:
                    window["nsp"] += values["nsp"] / s.gradient_accumulation
                    window["nsp_right"] += values["nsp_right"]
                    window["n_pairs"] += values["n_pairs"]
                window["pieces"] += batch.n_pieces
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.max_grad_norm)
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.schedule.step()
            self.step += 1
            window["seconds"] += time.perf_counter() - tick
            window["steps"] += 1
            if self.step % s.log_every == 0 or self.step == s.max_steps:
                row = self._window_row(window)
                progress(row)
                if self.dist.main:
                    self._log(log_path, row, started)
                window = {k: 0 for k in window}
            if s.dev is not None and (self.step % s.eval_every == 0 or self.step == s.max_steps) and self.dist.main:
                row = self.evaluate()
                progress(row, kind="eval")
                self._log(log_path, row, started, kind="eval")
            if self.step % s.checkpoint_every == 0 or self.step == s.max_steps:
                self.save_checkpoint()
        if self.dist.main:
            self.save_model(self.output_dir / "model-last")
            plot_curves(log_path, self.output_dir / PLOT_FILE)
        _barrier(self.dist)

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

    def _progress(self):
        from wasabi import msg

        def show(row: Dict[str, Any], kind: str = "train") -> None:
            if not self.dist.main:
                return
            if kind == "eval":
                extra = f", NSP accuracy {row['nsp_accuracy']:.3f}" if "nsp_accuracy" in row else ""
                msg.info(f"step {row['step']:>7} | dev: MLM perplexity {row['mlm_perplexity']:.2f}{extra}")
                return
            nsp = f" | NSP {row['nsp_loss']:.3f} acc {row['nsp_accuracy']:.3f}" if "nsp_loss" in row else ""
            share = 100 * row["step"] / self.s.max_steps
            msg.text(f"step {row['step']:>7}/{self.s.max_steps} ({share:5.1f}%) | loss {row['loss']:.4f} | "
                     f"MLM perplexity {row['mlm_perplexity']:.2f}{nsp} | lr {row['learning_rate']:.2e} | "
                     f"{row['pieces_per_second']:,.0f} pieces/s")

        return show

    def _log(self, path: Path, row: Dict[str, Any], started: float, kind: str = "train") -> None:
        new = not path.exists()
        with path.open("a", newline="", encoding="utf8") as file_:
            writer = csv.DictWriter(file_, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({**{k: row.get(k, "") for k in LOG_FIELDS}, "kind": kind,
                             "elapsed_seconds": round(time.perf_counter() - started, 2)})

    def save_model(self, folder: Path) -> None:
        """An HF BertForPreTraining folder with the tokenizer files, written atomically."""
        with atomic_dir(folder) as tmp:
            self._write_model(tmp)

    def _write_model(self, folder: Path) -> None:
        save_pretraining_checkpoint(folder, self.model_config, {k: v.detach().cpu() for k, v in self.model.state_dict().items()})
        tokenizer_source = self.source if self.source is not None else self.output_dir / "vocab"
        if all((tokenizer_source / name).is_file() for name in (TOKENIZER_JSON, VOCAB_TXT)):
            for name in TOKENIZER_FILES:
                if (tokenizer_source / name).is_file():
                    shutil.copyfile(tokenizer_source / name, folder / name)
        else:
            save_piece_tokenizer(self.tokenizer, folder, self.s.lowercase)

    def save_checkpoint(self) -> None:
        if self.dist.main:
            name = f"checkpoint-{self.step:08d}"
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
            # The folder appears whole, training state included, or not at all.
            buffer = io.BytesIO()
            torch.save(state, buffer)
            with atomic_dir(self.output_dir / name) as tmp:
                self._write_model(tmp)
                write_bytes(tmp / STATE_FILE, buffer.getvalue())
            for old in sorted(self.output_dir.glob("checkpoint-*"))[: -self.s.keep_checkpoints]:
                # Renamed away first: a kill during the removal leaves no half checkpoint.
                trash = self.output_dir / f".{old.name}.pid{os.getpid()}.removed.tmp"
                os.replace(old, trash)
                shutil.rmtree(trash, ignore_errors=True)
        _barrier(self.dist)

    def load_state(self, checkpoint: Path) -> None:
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
        if state["world_size"] != self.dist.world_size:
            raise ValueError(f"{checkpoint} was written by {state['world_size']} process(es); resume it with "
                             f"the same number (now {self.dist.world_size})")
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
            _truncate_log(self.output_dir / LOG_FILE, self.step)
        logger.info("Resuming from %s at step %d", checkpoint, self.step)


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log's rows up to `step` (a resumed run writes the later ones again), and
    drop a row that a killed process left half-written."""
    if not path.exists():
        return
    kept = []
    with path.open(encoding="utf8", newline="") as file_:
        for row in csv.DictReader(file_):
            if None in row or None in row.values() or set(row) != set(LOG_FIELDS):
                continue  # a cut line: too few fields, or two lines run together
            try:
                if int(row["step"]) <= step:
                    kept.append(row)
            except ValueError:
                continue
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(kept)
    with atomic_path(path) as tmp:
        tmp.write_text(out.getvalue(), encoding="utf8")


def plot_curves(log_path: Path, output: Path) -> None:
    """Training loss and dev perplexity against steps, as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no %s (pip install matplotlib)", output.name)
        return
    rows = list(csv.DictReader(log_path.open(encoding="utf8"))) if log_path.exists() else []
    train = [r for r in rows if r["kind"] == "train"]
    dev = [r for r in rows if r["kind"] == "eval"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot([int(r["step"]) for r in train], [float(r["loss"]) for r in train], label="training loss")
    left.set_xlabel("step")
    left.legend()
    right.plot([int(r["step"]) for r in train], [float(r["mlm_perplexity"]) for r in train], label="train MLM perplexity")
    if dev:
        right.plot([int(r["step"]) for r in dev], [float(r["mlm_perplexity"]) for r in dev], "o-", label="dev MLM perplexity")
    right.set_yscale("log")
    right.set_xlabel("step")
    right.legend()
    figure.tight_layout()
    with atomic_path(output) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
