"""`validation_confusion_matrices.jsonl`: one line per validated epoch, the raw confusion counts.

Each line: `{"epoch", "class_names", "counts"}` (dense, up to `DENSE_MAX_CLASSES` classes) or
`{"epoch", "class_names", "nonzero"}` with `[true, predicted, count]` triples (a 1,000-class
matrix is mostly zeros).
"""

from __future__ import annotations

import json
import os

import numpy as np

from monitor.limits import DENSE_MAX_CLASSES
from monitor.runfiles import lines

FILE = "validation_confusion_matrices.jsonl"


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def sparse_cells(cm: np.ndarray) -> np.ndarray:
    """The nonzero cells of a (C, C) count matrix as int64 (K, 3) rows (true, predicted, count)."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (C, C) matrix, got shape {cm.shape}")
    rows, cols = np.nonzero(cm)
    return np.stack([rows, cols, cm[rows, cols]], axis=1).astype(np.int64).reshape(-1, 3)


def dense_matrix(cells: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse of `sparse_cells`."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    cells = np.asarray(cells, np.int64).reshape(-1, 3)
    cm[cells[:, 0], cells[:, 1]] = cells[:, 2]
    return cm


def encode(epoch: int, class_names: list[str], cm: np.ndarray) -> dict:
    """One line's content: dense `counts` up to `DENSE_MAX_CLASSES` classes, else `nonzero`."""
    record = {"epoch": epoch, "class_names": list(class_names)}
    if len(class_names) <= DENSE_MAX_CLASSES:
        record["counts"] = cm.tolist()
    else:
        record["nonzero"] = sparse_cells(cm).tolist()
    return record


def decode(record: dict) -> np.ndarray:
    """The (C, C) counts of an `encode`d line, dense or sparse."""
    if "counts" in record:
        return np.asarray(record["counts"], dtype=np.int64)
    return dense_matrix(record["nonzero"], len(record["class_names"]))


def append(run_dir: str, epoch: int, class_names: list[str], cm: np.ndarray) -> None:
    lines.append_json_line(path(run_dir), encode(epoch, class_names, cm))


def read_lines(run_dir: str) -> list[dict]:
    """Every whole line, in order (a line cut short by a kill, or damaged, is left out and said once)."""
    return lines.read_json_lines(path(run_dir))


def last(run_dir: str) -> tuple[int, list[str], np.ndarray] | None:
    """(epoch, class names, counts) of the last validated epoch, or None."""
    records = read_lines(run_dir)
    if not records:
        return None
    record = records[-1]
    return int(record["epoch"]), list(record["class_names"]), decode(record)


def class_names(run_dir: str) -> list[str] | None:
    """The class names of the first line, or None (no file, or an unreadable first line)."""
    try:
        with open(path(run_dir), encoding="utf-8") as f:
            first = f.readline()
        names = json.loads(first).get("class_names") if first.strip() else None
    except (OSError, ValueError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and names else None


def truncate(run_dir: str, from_epoch: int) -> None:
    """Keep the lines of epochs < `from_epoch` (and drop a line cut short)."""
    lines.keep_epochs_before(path(run_dir), from_epoch)
