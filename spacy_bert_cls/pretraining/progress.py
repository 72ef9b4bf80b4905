"""What a pretraining run prints as it goes: a line per logged window, one per dev evaluation."""
from typing import Any, Dict

from wasabi import msg


def show_progress(row: Dict[str, Any], max_steps: int, kind: str = "train") -> None:
    if kind == "eval":
        extra = f", NSP accuracy {row['nsp_accuracy']:.3f}" if "nsp_accuracy" in row else ""
        msg.info(f"step {row['step']:>7} | dev: MLM perplexity {row['mlm_perplexity']:.2f}{extra}")
        return
    nsp = f" | NSP {row['nsp_loss']:.3f} acc {row['nsp_accuracy']:.3f}" if "nsp_loss" in row else ""
    share = 100 * row["step"] / max_steps
    msg.text(f"step {row['step']:>7}/{max_steps} ({share:5.1f}%) | loss {row['loss']:.4f} | "
             f"MLM perplexity {row['mlm_perplexity']:.2f}{nsp} | lr {row['learning_rate']:.2e} | "
             f"{row['pieces_per_second']:,.0f} pieces/s")
