"""`validation_per_class.csv`: every class's precision, recall, F1 and support, per validated epoch.

For a multi-label head each class is a label and its support the images holding it (positives).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from monitor.metrics import per_class
from monitor.runfiles import damage, lines

FILE = "validation_per_class.csv"
COLUMNS = ("epoch", "class", "precision", "recall", "f1", "support")


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def frame(cm: np.ndarray, class_names: list[str], epoch: int) -> pd.DataFrame:
    """Every class's precision, recall, F1 and support at `epoch`, one row per class."""
    return stats_frame(per_class(cm), class_names, epoch)


def stats_frame(stats: dict, class_names: list[str], epoch: int) -> pd.DataFrame:
    """One row per class from per-class `stats` (`precision`, `recall`, `f1`, `support` arrays)."""
    return pd.DataFrame({"epoch": epoch, "class": list(class_names),
                         **{k: stats[k] for k in ("precision", "recall", "f1", "support")}})


def append(run_dir: str, cm: np.ndarray, class_names: list[str], epoch: int) -> None:
    append_stats(run_dir, per_class(cm), class_names, epoch)


def append_stats(run_dir: str, stats: dict, class_names: list[str], epoch: int) -> None:
    """Append one epoch's rows from per-class `stats` (a multi-label head's, say)."""
    file_path = path(run_dir)
    stats_frame(stats, class_names, epoch).to_csv(file_path, mode="a", index=False, float_format="%.6g",
                                                  header=not os.path.exists(file_path))


def read(run_dir: str) -> pd.DataFrame:
    """Every whole row; a row cut short or damaged is left out, and said once."""
    table = pd.read_csv(path(run_dir), on_bad_lines="skip", encoding_errors="replace")
    numbers = table[[c for c in COLUMNS if c != "class"]].apply(pd.to_numeric, errors="coerce")
    whole = numbers.notna().all(axis=1) & table["class"].notna()
    if not whole.all():
        skipped = int((~whole).sum())
        damage.say(path(run_dir), f"{skipped} damaged or cut-short row{'s' if skipped > 1 else ''} skipped")
    table = table[whole].assign(**{c: numbers[c][whole] for c in numbers.columns})
    return table.astype({"epoch": np.int64, "support": np.int64}).reset_index(drop=True)


def truncate(run_dir: str, from_epoch: int) -> None:
    """Keep the header and the whole lines of epochs < `from_epoch` (`epoch` is the first column)."""
    def wanted(line: str) -> bool:
        first = line.split(",", 1)[0]
        return first.isdigit() and int(first) < from_epoch and line.endswith("\n")

    lines.keep(path(run_dir), wanted, header=1)
