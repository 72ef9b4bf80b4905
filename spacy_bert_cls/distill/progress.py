"""What a distillation run prints as it goes: a line per logged window, one per dev check."""
from typing import Dict

from wasabi import msg


def show_progress(step: int, total: int, losses: Dict[str, float], learn_rate: float, words_per_second: float) -> None:
    """The window's mean loss of each part: the sum, the hidden-state MSE, each head's soft
    loss, and each head's gold loss ("gold <head>", apart from the sum)."""
    parts = " | ".join(f"{name} {value:.4f}" for name, value in losses.items())
    msg.text(f"step {step:>7}/{total} ({100 * step / total:5.1f}%) | {parts} | lr {learn_rate:.2e} | "
             f"{words_per_second:,.0f} words/s")


def show_agreement(step: int, agreement: Dict[str, float]) -> None:
    shown = {"cats": "top class as the teacher's", "ents_f": "entity F against the teacher's"}
    parts = ", ".join(f"{shown[key]} {value:.3f}" for key, value in agreement.items())
    msg.info(f"step {step:>7} | dev: {parts or 'nothing to compare'}")
