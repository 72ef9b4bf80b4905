"""The pretraining curves of a log.csv: one figure for curves.png and evaluate's report.

Training loss, and train and dev MLM perplexity, against steps."""
import logging
from pathlib import Path
from typing import Dict, List

from ..checkpoint.io import atomic_path
from .log import read_log

# The pretrain run's messages keep the logger name they had before train.py was split.
logger = logging.getLogger("spacy_bert_cls.pretraining.train")

PLOT_FILE = "curves.png"


def draw_curves(plt, rows: List[Dict[str, str]]):
    """RETURNS a matplotlib figure of the log's rows; plt: matplotlib.pyplot (the caller
    imports it and says what to install when it is missing)."""
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
    return figure


def plot_curves(log_path: Path, output: Path) -> None:
    """The curves as a PNG (needs matplotlib: without it, a warning and no PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no %s (pip install matplotlib)", output.name)
        return
    figure = draw_curves(plt, read_log(log_path))
    with atomic_path(output) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
