"""Run directories and what a run leaves in them (metrics.json, CSV)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from importlib import metadata

import numpy as np
import pandas as pd

from monitor.errors import MonitorError

METRICS_FILE = "metrics.json"
TEST_CONFUSION_FILE = "confusion_matrix_test.csv"
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
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=_jsonable)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_confusion_csv(path: str, cm: np.ndarray, class_names: list[str]) -> None:
    pd.DataFrame(cm, index=pd.Index(class_names, name="true\\predicted"),
                 columns=class_names).to_csv(path)
