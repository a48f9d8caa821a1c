"""Resuming a killed run: its last committed backup, and cutting off what was written after it.

A run directory keeps `backup/epoch-NNNN/` (weights with optimizer state, and the
history of epochs 1..N), committed by renaming a finished directory only after
epoch N's summaries are on disk (`callbacks.epoch_backup`). A run killed at any
moment therefore resumes at epoch index N: whatever it wrote for later epochs (a
killed epoch's summaries, or a partly written last record) is cut from the event
files and the per-epoch files first, so TensorBoard shows every epoch exactly once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass

from monitor.runs import MATRICES_FILE

BACKUP_DIR = "backup"
WEIGHTS_FILE = "state.weights.h5"
STATE_FILE = "state.json"
EPOCH_DIR = re.compile(r"epoch-(\d{4,})$")
ITERATION_SUFFIX = "_vs_iterations"  # Keras' TensorBoard: evaluation_<metric>_vs_iterations
PER_EPOCH_FILES = (MATRICES_FILE, "validation_per_class.csv")


@dataclass(frozen=True)
class Backup:
    """A committed backup: `epochs_done` epochs, their history, the weights file."""

    epochs_done: int
    history: dict[str, list[float]]
    weights_path: str


def latest_backup(run_dir: str) -> Backup | None:
    """The newest committed backup of `run_dir`, or None (no epoch was completed)."""
    root = os.path.join(run_dir, BACKUP_DIR)
    if not os.path.isdir(root):
        return None
    done = sorted((int(m.group(1)), name) for name in os.listdir(root) if (m := EPOCH_DIR.match(name)))
    for epochs, name in reversed(done):
        path = os.path.join(root, name)
        try:
            with open(os.path.join(path, STATE_FILE), encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue  # committed directories are whole; skip anything else
        if os.path.exists(os.path.join(path, WEIGHTS_FILE)) and state.get("epochs_done") == epochs:
            return Backup(epochs, state.get("history", {}), os.path.join(path, WEIGHTS_FILE))
    return None


def truncate_run(run_dir: str, from_epoch: int, iterations_done: int | None = None) -> dict[str, int]:
    """Drop every event at step >= `from_epoch` and every per-epoch line of those epochs.

    Keras' `evaluation_<metric>_vs_iterations` scalars are stepped by optimizer
    iterations instead: those past `iterations_done` (the training steps of the
    kept epochs) are dropped.

    Also drops a truncated last record (a write cut short by SIGKILL). Files are
    rewritten to a temporary name and renamed. Returns how many events were dropped
    per event file (relative path), for the files that changed.
    """
    dropped = {}
    for folder, _, files in os.walk(run_dir):
        if os.path.relpath(folder, run_dir).split(os.sep)[0] == BACKUP_DIR:
            continue
        for name in files:
            path = os.path.join(folder, name)
            if "tfevents" in name and not name.endswith(".tmp"):
                count = _truncate_event_file(path, from_epoch, iterations_done)
                if count:
                    dropped[os.path.relpath(path, run_dir)] = count
    for name in PER_EPOCH_FILES:
        _truncate_lines(os.path.join(run_dir, name), from_epoch)
    return dropped


def _truncate_event_file(path: str, from_epoch: int, iterations_done: int | None) -> int:
    """Rewrite `path` without events at step >= `from_epoch` (iteration-stepped tags: past
    `iterations_done`); returns the number dropped (a truncated last record counts as one)."""
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    kept, dropped = [], 0
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            event = event_pb2.Event.FromString(record)
            by_iterations = any(v.tag.endswith(ITERATION_SUFFIX) for v in event.summary.value)
            limit_passed = (event.step > iterations_done if by_iterations and iterations_done is not None
                            else event.step >= from_epoch)
            if limit_passed and (event.HasField("summary") or event.HasField("graph_def")
                                 or event.HasField("tagged_run_metadata")):
                dropped += 1
            else:
                kept.append(record)
    except tf.errors.DataLossError:  # a record cut short by a kill: drop it
        dropped += 1
    if dropped:
        tmp = f"{path}.tmp"
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in kept:
                writer.write(record)
        os.replace(tmp, path)
    return dropped


def _truncate_lines(path: str, from_epoch: int) -> None:
    """Keep the header and the lines of epochs < `from_epoch` of a JSONL or CSV file."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    if path.endswith(".jsonl"):
        keep = [line for line in lines if _jsonl_epoch(line) is not None and _jsonl_epoch(line) < from_epoch]
    else:  # CSV with an `epoch` first column
        keep = lines[:1] + [line for line in lines[1:] if line.split(",", 1)[0].isdigit()
                            and int(line.split(",", 1)[0]) < from_epoch and line.endswith("\n")]
    if keep != lines:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(keep)
        os.replace(tmp, path)


def _jsonl_epoch(line: str) -> int | None:
    try:
        return int(json.loads(line)["epoch"]) if line.endswith("\n") else None
    except (ValueError, KeyError, TypeError):
        return None


def remove_backups(run_dir: str) -> None:
    shutil.rmtree(os.path.join(run_dir, BACKUP_DIR), ignore_errors=True)
