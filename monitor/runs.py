"""Run directories and what a run leaves in them (metrics.json, CSV)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
from importlib import metadata

import numpy as np
import pandas as pd

from monitor.errors import MonitorError

METRICS_FILE = "metrics.json"
TEST_CONFUSION_FILE = "confusion_matrix_test.csv"
MATRICES_FILE = "validation_confusion_matrices.jsonl"  # one line per validated epoch
MODEL_FILE = "model.keras"
PACKAGES = ("tensorflow", "tensorboard", "keras", "numpy", "matplotlib", "seaborn", "pandas",
            "scikit-learn")


def run_dir_path(logdir: str, dataset: str, model: str, run_name: str | None) -> str:
    """Where a run goes; raises MonitorError if an explicitly named run exists."""
    if run_name:
        path = os.path.join(logdir, run_name)
        if os.path.exists(path):
            raise MonitorError(
                f"run {path} already exists: pick another --run-name (runs are never overwritten)"
            )
        return path
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(logdir, f"{dataset}-{model}-{stamp}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def comparison_dir_path(logdir: str, run_name: str | None) -> str:
    """The parent folder of several runs started together: `--run-name`, else compare-<time>."""
    if run_name:
        return run_dir_path(logdir, "", "", run_name)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = os.path.join(logdir, f"compare-{stamp}"), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(logdir, f"compare-{stamp}-{n}")
    return path


def create_run_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=False)
    except FileExistsError:
        raise MonitorError(f"run {path} already exists: pick another --run-name") from None
    except OSError as err:
        raise MonitorError(f"cannot create run directory {path}: {err.strerror}") from None
    return path


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def git_commit() -> dict[str, object]:
    """The project's commit and whether the work tree had changes (None outside git)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(["git", "-C", here, *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def write_json(path: str, data: dict) -> None:
    """Strict JSON (NaN and infinities become null), written whole: a temporary file, then a rename."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_finite(data), f, indent=2, default=_jsonable, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def read_record(run_dir: str) -> dict | None:
    """A run's metrics.json, or None if it has none (or an unreadable one)."""
    try:
        with open(os.path.join(run_dir, METRICS_FILE), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def test_macro_f1(record: dict) -> float | None:
    """Macro-averaged F1 of a run record's `test_per_class`, None without it."""
    f1 = [c["f1"] for c in (record.get("test_per_class") or {}).values()]
    return sum(f1) / len(f1) if f1 else None


def load_model_safely(path: str):
    """`keras.saving.load_model(path, safe_mode=True)`; a file holding code (a `Lambda` layer,
    say) is refused with a MonitorError saying so, never run."""
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err) or "unsafe" in str(err).lower():
            raise MonitorError(
                f"{path} holds code (a Lambda layer or other custom Python), which is never loaded: "
                "safe_mode=True refused it. Use a model built from stock Keras layers"
            ) from None
        raise MonitorError(f"cannot load {path}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise MonitorError(f"cannot load {path}: {err}") from None


def check_writable_logdir(logdir: str) -> None:
    """MonitorError unless run directories can be created under `logdir` (checked before training)."""
    path = os.path.abspath(logdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise MonitorError(f"--logdir {logdir} is a file, not a directory: pick a directory")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise MonitorError(f"--logdir {logdir} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MonitorError(f"--logdir {logdir} is not writable ({existing} denies writing): "
                           "pick a directory you can write to")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_confusion_csv(path: str, cm: np.ndarray, class_names: list[str]) -> None:
    pd.DataFrame(cm, index=pd.Index(class_names, name="true\\predicted"),
                 columns=class_names).to_csv(path)


def resume_config(run_dir: str, given: dict):
    """The RunConfig a killed run was started with, for `--resume run_dir`.

    `given`: the flags typed with --resume (argparse dests); each must agree with the
    run's own (`--data-dir` may differ: the same files can live elsewhere). Raises
    MonitorError for a directory that is not a run, a finished or failed run, or a conflict.
    """
    from monitor.config import RunConfig

    record = read_record(run_dir)
    if not os.path.isdir(run_dir) or record is None or not isinstance(record.get("flags"), dict):
        raise MonitorError(f"--resume {run_dir}: not a run directory (no metrics.json with the run's "
                           "flags); give a directory train.py created")
    status = str(record.get("status"))
    if status == "completed":
        raise MonitorError(f"--resume {run_dir}: that run is already completed; start a new run instead")
    if status.startswith("failed"):
        raise MonitorError(f"--resume {run_dir}: that run {status}; resuming it would fail again: "
                           "start a new run (with a lower --learning-rate)")
    flags = dict(record["flags"])
    for key, value in given.items():
        if key in ("data_dir", "model") and value is None:
            continue
        if key == "data_dir":
            flags["data_dir"] = value
            continue
        if key not in flags or flags[key] != value:
            raise MonitorError(
                f"--{key.replace('_', '-')} {value} conflicts with the run being resumed, which has "
                f"{flags.get(key)!r}: a resumed run keeps its own flags (leave it out)")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise MonitorError(f"--resume {run_dir}: the directory is not writable")
    try:
        return RunConfig(**flags).resolved()
    except TypeError as err:
        raise MonitorError(f"--resume {run_dir}: its recorded flags are not this version's ({err})") from None
