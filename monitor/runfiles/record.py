"""`metrics.json`: a run's flags, status, per-epoch history and final metrics, rewritten whole."""

from __future__ import annotations

import contextlib
import json
import math
import os

import numpy as np

from monitor.errors import MonitorError

FILE = "metrics.json"


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def write(run_dir: str, record: dict) -> None:
    """Strict JSON (NaN and infinities become null), written whole: a temporary file, then a rename."""
    write_json(path(run_dir), record)


def write_json(file_path: str, data: dict) -> None:
    """`data` into `file_path` whole or not at all: where the temporary file cannot be written
    (a full disk) it is removed and `file_path` keeps its last whole version."""
    tmp = f"{file_path}.tmp"
    text = json.dumps(_finite(data), indent=2, default=_jsonable, allow_nan=False) + "\n"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file_path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def read(run_dir: str) -> dict | None:
    """A run's metrics.json, or None if it has none (or an unreadable one)."""
    try:
        with open(path(run_dir), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_run(record: dict | None) -> bool:
    """Whether a metrics.json content is a run's: a dict with the run's flags."""
    return isinstance(record, dict) and isinstance(record.get("flags"), dict)


def require(run_dir: str, what: str = "") -> dict:
    """The run's record; MonitorError saying so when `run_dir` is not a run directory.

    `what` prefixes the message (e.g. "--resume logs/x").
    """
    record = read(run_dir) if os.path.isdir(run_dir) else None
    if not is_run(record):
        raise MonitorError(f"{what or run_dir}: not a run directory (no readable {FILE} with the run's "
                           "flags); give a directory train.py created")
    return record


def runs_inside(folder: str) -> list[str]:
    """Names of the run directories directly inside `folder` (a comparison's parent folder)."""
    if not os.path.isdir(folder):
        return []
    return sorted(d for d in os.listdir(folder) if os.path.isfile(os.path.join(folder, d, FILE)))


def test_macro_f1(record: dict) -> float | None:
    """Macro-averaged F1 of a run record's `test_per_class`, None without it."""
    f1 = [c["f1"] for c in (record.get("test_per_class") or {}).values()]
    return sum(f1) / len(f1) if f1 else None


def final_metrics(record: dict) -> dict[str, float | int | None]:
    """A run's final numbers: `val_accuracy`, `val_loss` (the last epoch's when the run has no
    `final` yet), `test_accuracy`, `test_loss`, `test_macro_f1`, `epochs_run` (None when missing)."""
    final = record.get("final") or {}
    history = record.get("history") or {}
    validation, test = final.get("validation") or {}, final.get("test") or {}

    def last(key):
        values = history.get(key) or []
        return values[-1] if values else None

    return {
        "val_accuracy": validation.get("accuracy", last("val_accuracy")),
        "val_loss": validation.get("loss", last("val_loss")),
        "test_accuracy": test.get("accuracy"),
        "test_loss": test.get("loss"),
        "test_macro_f1": test_macro_f1(record),
        "epochs_run": record.get("epochs_run", len(history.get("loss", []))),
    }


def _finite(value):
    """`value` with every non-finite float replaced by None, recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
