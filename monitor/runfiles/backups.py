"""`backup/epoch-NNNN/`: the weights (optimizer state included) and history after epoch N.

A backup is written as `backup/.partial-NNNN` and committed by renaming it to `epoch-NNNN`
once that epoch's summaries are on disk (`callbacks.epoch_backup`), so a committed backup
never runs ahead of the event files. A completed run keeps none.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from dataclasses import dataclass

DIR = "backup"
WEIGHTS_FILE = "state.weights.h5"
STATE_FILE = "state.json"
_COMMITTED = re.compile(r"epoch-(\d{4,})$")


@dataclass(frozen=True)
class Backup:
    """A committed backup: `epochs_done` epochs, their history, the weights file."""

    epochs_done: int
    history: dict[str, list[float]]
    weights_path: str


def root(run_dir: str) -> str:
    return os.path.join(run_dir, DIR)


def partial_path(run_dir: str, done: int) -> str:
    return os.path.join(root(run_dir), f".partial-{done:04d}")


def start(run_dir: str, done: int) -> str:
    """An empty `.partial-NNNN` directory for epoch `done`'s backup; returns its path.
    FileNotFoundError when `run_dir` itself is gone (it is never made again)."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), run_dir)
    partial = partial_path(run_dir, done)
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    return partial


def write_weights(partial: str, data: bytes) -> None:
    """The weights file, from its bytes: one plain write, so a full disk fails cleanly."""
    with open(os.path.join(partial, WEIGHTS_FILE), "wb") as f:
        f.write(data)


def write_state(partial: str, done: int, history: dict[str, list[float]]) -> None:
    with open(os.path.join(partial, STATE_FILE), "w", encoding="utf-8") as f:
        json.dump({"epochs_done": done, "history": history}, f, allow_nan=True)


def discard(run_dir: str, done: int | None = None) -> None:
    """Remove epoch `done`'s partial backup (one that could not be written whole); every
    uncommitted one with `done` None."""
    if done is not None:
        shutil.rmtree(partial_path(run_dir, done), ignore_errors=True)
        return
    for name in os.listdir(root(run_dir)) if os.path.isdir(root(run_dir)) else []:
        if name.startswith(".partial-"):
            shutil.rmtree(os.path.join(root(run_dir), name), ignore_errors=True)


def commit(run_dir: str, done: int, keep: int = 2) -> None:
    """Rename epoch `done`'s partial backup to `epoch-NNNN`; keep the `keep` newest."""
    os.replace(os.path.join(root(run_dir), f".partial-{done:04d}"),
               os.path.join(root(run_dir), f"epoch-{done:04d}"))
    for name in sorted(os.listdir(root(run_dir)))[:-keep]:
        if name.startswith("epoch-"):
            shutil.rmtree(os.path.join(root(run_dir), name), ignore_errors=True)


def latest(run_dir: str) -> Backup | None:
    """The newest committed backup of `run_dir`, or None (no epoch was completed)."""
    if not os.path.isdir(root(run_dir)):
        return None
    done = sorted((int(m.group(1)), name) for name in os.listdir(root(run_dir))
                  if (m := _COMMITTED.match(name)))
    for epochs, name in reversed(done):
        folder = os.path.join(root(run_dir), name)
        try:
            with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue  # committed directories are whole; skip anything else
        if os.path.exists(os.path.join(folder, WEIGHTS_FILE)) and state.get("epochs_done") == epochs:
            return Backup(epochs, state.get("history", {}), os.path.join(folder, WEIGHTS_FILE))
    return None


def remove(run_dir: str) -> None:
    shutil.rmtree(root(run_dir), ignore_errors=True)


def merge_history(past: dict[str, list[float]] | None,
                  current: dict[str, list[float]]) -> dict[str, list[float]]:
    """A resumed run's history: the epochs before the resume (`past`), then this fit's."""
    past = past or {}
    keys = set(past) | set(current)
    return {k: [float(v) for v in past.get(k, [])] + [float(v) for v in current.get(k, [])]
            for k in sorted(keys)}
