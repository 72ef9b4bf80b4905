"""OUTPUT_DIR/log.csv: a row per logged window of training steps and per dev evaluation.

A resumed run cuts the log back to its checkpoint's step and writes the later rows again.
"""
import csv
import io
import time
from pathlib import Path
from typing import Any, Dict, List

from ..checkpoint.io import atomic_path

LOG_FILE = "log.csv"
LOG_FIELDS = ("step", "kind", "loss", "mlm_loss", "mlm_perplexity", "nsp_loss", "nsp_accuracy",
              "learning_rate", "pieces_per_second", "elapsed_seconds")


def append_row(path: Path, row: Dict[str, Any], started: float, kind: str = "train") -> None:
    """One row (kind: train or eval), with the seconds since `started` (a perf_counter)."""
    new = not path.exists()
    with path.open("a", newline="", encoding="utf8") as file_:
        writer = csv.DictWriter(file_, fieldnames=LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({**{k: row.get(k, "") for k in LOG_FIELDS}, "kind": kind,
                         "elapsed_seconds": round(time.perf_counter() - started, 2)})


def read_log(path: Path) -> List[Dict[str, str]]:
    """The log's rows; none when there is no log."""
    if not path.exists():
        return []
    with path.open(encoding="utf8", newline="") as file_:
        return list(csv.DictReader(file_))


def truncate_log(path: Path, step: int) -> None:
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
