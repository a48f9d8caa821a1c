"""Resuming a killed run: its recorded flags, and cutting off what was written after its last backup.

A run directory keeps `backup/epoch-NNNN/` (`runfiles.backups`), committed only after
epoch N's summaries are on disk. A run killed at any moment therefore resumes at epoch
index N: whatever it wrote for later epochs (a killed epoch's summaries, or a partly
written last record) is cut from the event files and from every per-epoch file
(`runfiles.PER_EPOCH`) first, so TensorBoard shows every epoch exactly once.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import sys

from monitor import runfiles, storage
from monitor.errors import MonitorError
from monitor.runfiles import backups, event_files, record
from monitor.settings import RunConfig

ITERATION_SUFFIX = "_vs_iterations"  # Keras' TensorBoard: evaluation_<metric>_vs_iterations


def resume_config(run_dir: str, given: dict) -> RunConfig:
    """The RunConfig a killed run was started with, for `--resume run_dir`.

    `given`: the flags typed with --resume (argparse dests); each must agree with the
    run's own (`--data-dir` may differ: the same files can live elsewhere). Raises
    MonitorError for a directory that is not a run, a finished or failed run, or a conflict.
    """
    recorded = record.require(run_dir, f"--resume {run_dir}")
    _check_resumable(run_dir, str(recorded.get("status")))
    flags = dict(recorded["flags"])
    for key, value in given.items():
        if key in ("data_dir", "model") and value is None:
            continue
        if key == "data_dir":
            flags["data_dir"] = value
        elif key not in flags or flags[key] != value:
            raise MonitorError(
                f"--{key.replace('_', '-')} {value} conflicts with the run being resumed, which has "
                f"{flags.get(key)!r}: a resumed run keeps its own flags (leave it out)")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise MonitorError(f"--resume {run_dir}: the directory is not writable")
    try:
        return RunConfig(**flags).resolved()
    except TypeError as err:
        raise MonitorError(f"--resume {run_dir}: its recorded flags are not this version's ({err})") from None


def _check_resumable(run_dir: str, status: str) -> None:
    if status == "completed":
        raise MonitorError(f"--resume {run_dir}: that run is already completed; start a new run instead")
    if status.startswith("failed") and status not in storage.STATUSES:
        raise MonitorError(f"--resume {run_dir}: that run {status}; resuming it would fail again: "
                           "start a new run (with a lower --learning-rate)")


def truncate_run(run_dir: str, from_epoch: int | None, iterations_done: int | None = None,
                 damaged: dict[str, str] | None = None) -> dict[str, int]:
    """Drop every event at step >= `from_epoch` and every per-epoch line of those epochs
    (`from_epoch` None: keep every epoch, drop only what is damaged).

    Keras' `evaluation_<metric>_vs_iterations` scalars are stepped by optimizer
    iterations instead: those past `iterations_done` (the training steps of the
    kept epochs) are dropped.

    Also drops a truncated last record (a write cut short by SIGKILL) and damaged records
    (checksums that fail: a bit flip, a copy gone wrong), what each damaged event file lost
    going into `damaged` (relative path -> phrase). Files are rewritten to a temporary name
    and renamed. Returns how many events were dropped per event file (relative path), for the
    files that changed.
    """
    dropped = {}
    for folder, _, files in os.walk(run_dir):
        if os.path.relpath(folder, run_dir).split(os.sep)[0] == backups.DIR:
            continue
        for name in files:
            path = os.path.join(folder, name)
            if "tfevents" in name and not name.endswith(".tmp"):
                damage = event_files.Damage(path)
                count = _truncate_event_file(path, from_epoch, iterations_done, damage)
                if count:
                    dropped[os.path.relpath(path, run_dir)] = count
                if damage.describe() and damaged is not None:
                    damaged[os.path.relpath(path, run_dir)] = damage.describe()
    for per_epoch in runfiles.PER_EPOCH:
        per_epoch.truncate(run_dir, sys.maxsize if from_epoch is None else from_epoch)
    return dropped


def _truncate_event_file(path: str, from_epoch: int | None, iterations_done: int | None,
                         damage: event_files.Damage) -> int:
    """Rewrite `path` without events at step >= `from_epoch` (iteration-stepped tags: past
    `iterations_done`) and without damaged records; returns the number dropped (a truncated
    last record counts as one, each damaged record too)."""
    kept, dropped = [], 0
    for framed, data in event_files.framed_records(path, damage):
        if data is None or (from_epoch is not None and _after(data, from_epoch, iterations_done)):
            dropped += 1
        else:
            kept.append(framed)
    if dropped or damage.records:
        event_files.rewrite(path, kept)
    return dropped + damage.records


def _after(data: bytes, from_epoch: int, iterations_done: int | None) -> bool:
    """Whether the event in `data` belongs to an epoch being cut (file headers never do)."""
    event = event_files.event_pb2.Event.FromString(data)
    if not any(event.HasField(kind) for kind in ("summary", "graph_def", "tagged_run_metadata")):
        return False
    by_iterations = any(v.tag.endswith(ITERATION_SUFFIX) for v in event.summary.value)
    if by_iterations and iterations_done is not None:
        return event.step > iterations_done
    return event.step >= from_epoch
