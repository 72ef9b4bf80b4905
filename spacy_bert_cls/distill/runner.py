"""The training loop of a distillation run, from its first or a resumed step to model-last.

thinc's Adam (decoupled weight decay 0.01, global-norm clip 1.0 on the encoder, as the
shipped training configs) with a linear warm-up and decay; a progress line per window, the
dev agreement with the teacher, checkpoints (pretraining.checkpoints' folders), and at the
end OUTPUT/model-last, saved atomically, with what was done in its meta.json.
"""
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy.training import Example
from thinc.api import Adam

from ..models.encoder import get_bert_shim
from ..pretraining.checkpoints import save_checkpoint
from ..pytorch.quantized import fp32_backend_choices
from ..saving import save_pipeline
from .agreement import Agreement
from .data import WordReplacer, batch_at, steps_per_epoch
from .progress import show_agreement, show_progress
from .resume import input_digests, load_optimizer_state, optimizer_state, random_state, set_random_state
from .settings import Settings
from .step import Distiller

logger = logging.getLogger("spacy_bert_cls.distill")


class Runner:
    def __init__(self, settings: Settings, distiller: Distiller, texts: List[str], gold: Optional[List[Example]],
                 agreement: Optional[Agreement]) -> None:
        self.s, self.d, self.texts, self.gold, self.agreement = settings, distiller, texts, gold, agreement
        self.total = settings.steps or settings.epochs * steps_per_epoch(len(texts), settings.batch_size)
        self.step = 0
        self.optimizer = Adam(settings.learn_rate, L2=0.01, grad_clip=1.0, use_averages=False,
                              L2_is_weight_decay=True)
        self.last: Dict[str, float] = {}
        self.last_agreement: Dict[str, float] = {}
        self.replacer = WordReplacer(texts, settings.augment) if settings.augment > 0 else None
        self.inputs = input_digests(settings.teacher, settings.data, settings.gold)

    def learn_rate(self, step: int) -> float:
        warmup = round(self.s.warmup_fraction * self.total)
        if warmup and step < warmup:
            return self.s.learn_rate * (step + 1) / warmup
        return self.s.learn_rate * max(0.0, (self.total - step) / max(1, self.total - warmup))

    def run(self, stop_after: Optional[int] = None) -> Optional[Path]:
        """Train to the last step and save model-last (RETURNS its path); `stop_after`: stop
        once that step's checkpoint is written, as a killed run would (RETURNS None)."""
        window: Dict[str, float] = {}
        while self.step < self.total:
            self.optimizer.learn_rate = self.learn_rate(self.step)
            texts = batch_at(self.texts, self.s.batch_size, self.s.seed, self.step)
            if self.replacer is not None:
                texts = self.replacer(texts, self.s.seed, self.step)
            gold = batch_at(self.gold, self.s.batch_size, self.s.seed + 1, self.step) if self.gold else None
            for key, value in self.d.step(texts, gold, self.optimizer).items():
                window[key] = window.get(key, 0.0) + value
            window["steps"] = window.get("steps", 0.0) + 1
            self.step += 1
            window = self._report(window)
            if self.step % self.s.checkpoint_every == 0 or self.step == self.total:
                self.save_checkpoint()
            if stop_after is not None and self.step >= stop_after and self.step < self.total:
                return None
        return self.save_model()

    def _report(self, window: Dict[str, float]) -> Dict[str, float]:
        last = self.step == self.total
        if self.step % self.s.log_every == 0 or last:
            n = window.pop("steps")
            words, seconds = window.pop("words"), window.pop("seconds")
            losses = {k: v / n for k, v in window.items()}
            soft = sum(v for k, v in losses.items() if not k.startswith("gold "))
            self.last = {"loss": soft, **losses}
            show_progress(self.step, self.total, self.last, self.optimizer.learn_rate, words / max(seconds, 1e-9))
            window = {}
        if self.agreement is not None and (self.step % self.s.eval_every == 0 or last):
            self.last_agreement = self.agreement.measure(self.d.student)
            show_agreement(self.step, self.last_agreement)
        return window

    def save_checkpoint(self) -> None:
        state = {"step": self.step, "world_size": 1, "settings": self.s.to_dict(), "layer_map": list(self.d.mapping),
                 "inputs": self.inputs,
                 "optimizer": optimizer_state(self.optimizer, self.d.student), "fp32_backends": fp32_backend_choices(),
                 **random_state()}
        save_checkpoint(self.s.output, self.step, state, self.d.student.to_disk, self.s.keep_checkpoints)

    def load_state(self, checkpoint: Path, state: Dict[str, Any]) -> None:
        """Go on from `checkpoint`, whose training state (read_state's) is `state`."""
        # Checkpoints from before --augment and --attention-weight had neither.
        saved = {"augment": 0.0, "attention_weight": 0.0, **state["settings"]}
        # The steps too: the learning rate's schedule is laid out over them.
        for key in ("teacher", "layers", "data", "gold", "batch_size", "seed", "learn_rate", "temperature",
                    "hidden_weight", "attention_weight", "augment", "steps", "epochs"):
            if key in saved and str(saved[key]) != str(self.s.to_dict()[key]):
                raise ValueError(f"{checkpoint} was written with {key} {saved[key]}, not "
                                 f"{self.s.to_dict()[key]}: resume with the same settings, or choose another output "
                                 f"folder")
        for key, digest in state.get("inputs", {}).items():  # checkpoints from before had none
            if digest != self.inputs[key]:
                raise ValueError(f"{checkpoint} was written with another {key} ({getattr(self.s, key)} has changed "
                                 f"since): start a new run in another output folder, or remove this one")
        self.step = int(state["step"])
        device = next(get_bert_shim(self.d.encoder.model).windowed.bert.parameters()).device
        load_optimizer_state(self.optimizer, self.d.student, state["optimizer"], device)
        set_random_state(state)
        logger.info("Resuming from %s at step %d", checkpoint, self.step)

    def save_model(self) -> Path:
        nlp = self.d.student
        meta = nlp.meta.setdefault("spacy_bert_cls", {})
        meta["distillation"] = self.summary()
        path = self.s.output / "model-last"
        save_pipeline(nlp, path)
        return path

    def summary(self) -> Dict[str, Any]:
        """What the student was distilled from and how (meta.json "spacy_bert_cls"."distillation")."""
        teacher = self.d.teacher
        s = self.s
        return {"teacher": str(s.teacher), "teacher_name": f"{teacher.meta.get('lang')}_{teacher.meta.get('name')}",
                "teacher_version": teacher.meta.get("version"),
                "teacher_layers": self.d.teacher_bert.config.num_hidden_layers, "layers": len(self.d.mapping),
                "layer_map": self.d.mapping, "temperature": s.temperature, "hidden_weight": s.hidden_weight,
                "attention_weight": s.attention_weight, "augment": s.augment,
                "steps": self.step, "batch_size": s.batch_size, "learn_rate": s.learn_rate,
                "data": Path(s.data).name, "gold": Path(s.gold).name if s.gold else None,
                "losses": {k: round(v, 6) for k, v in self.last.items()},
                "dev_agreement": {k: round(v, 6) for k, v in self.last_agreement.items()}}
