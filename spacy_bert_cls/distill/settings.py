"""A distillation run's settings, checked: what `spacy-bert-cls distill` was asked to do."""
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class Settings:
    """Everything a run reads besides the teacher itself.

    teacher (Path): the trained pipeline to distil (a `bert` component and its heads).
    output (Path): where checkpoints and model-last go.
    layers (int): the student's encoder layers, 1 <= layers < the teacher's.
    data (Path): raw in-domain text (.txt a text a line, .jsonl {"text"}; .spacy and CoNLL
        files are read for their texts): the teacher's outputs on it are the targets.
    gold (Optional[Path]): labelled examples (.spacy, .jsonl, CoNLL) whose ordinary losses are
        added, a gold batch per step.
    dev (Optional[Path]): texts to measure the student's agreement with the teacher on.
    width (Optional[int]): the student's hidden size; only the teacher's own is supported.
    steps (Optional[int]): optimizer steps; None: `epochs` passes over `data`.
    temperature (float): T of the soft targets; the soft losses are scaled by T^2.
    hidden_weight (float): weight of the hidden-state MSE (0: outputs only, and the teacher's
        encoder runs once per batch instead of twice).
    attention_weight (float): weight of the attention loss, the KL of every head's attention
        weights at the mapped layers (0: none).
    augment (float): in half of each batch's texts, the probability of each word being
        replaced by another word of the data of the same shape (data.WordReplacer); 0: none.
    """

    teacher: Path
    output: Path
    layers: int
    data: Path
    gold: Optional[Path] = None
    dev: Optional[Path] = None
    width: Optional[int] = None
    steps: Optional[int] = None
    epochs: int = 3
    batch_size: int = 32
    learn_rate: float = 3e-4
    warmup_fraction: float = 0.05
    temperature: float = 1.0
    hidden_weight: float = 1.0
    attention_weight: float = 4.0
    augment: float = 0.0
    dropout: float = 0.1
    seed: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 20
    eval_every: int = 200
    resume: bool = False

    def __post_init__(self) -> None:
        for name in ("teacher", "output", "data", "gold", "dev"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        positive = {"layers": self.layers, "epochs": self.epochs, "batch_size": self.batch_size,
                    "checkpoint_every": self.checkpoint_every, "keep_checkpoints": self.keep_checkpoints,
                    "log_every": self.log_every, "eval_every": self.eval_every}
        if self.steps is not None:
            positive["steps"] = self.steps
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be > 0, got {self.temperature}")
        if self.learn_rate <= 0:
            raise ValueError(f"--learn-rate must be > 0, got {self.learn_rate}")
        if self.hidden_weight < 0:
            raise ValueError(f"--hidden-weight must be >= 0, got {self.hidden_weight}")
        if self.attention_weight < 0:
            raise ValueError(f"--attention-weight must be >= 0, got {self.attention_weight}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError("--dropout and --warmup-fraction must be in [0, 1)")
        if not 0.0 <= self.augment < 1.0:
            raise ValueError(f"--augment must be in [0, 1), got {self.augment}")

    def to_dict(self) -> Dict[str, Any]:
        """The settings as plain values (paths as strings), for the checkpoint and the meta."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
