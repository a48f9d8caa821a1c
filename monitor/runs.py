"""Run directories: where a run goes, creating it, and the provenance it records.

What a run leaves inside its directory has its home in `monitor.runfiles`.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata

from monitor.errors import MonitorError

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
