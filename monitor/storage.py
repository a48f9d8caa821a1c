"""Write failures of a run's files: a full disk, a quota, a read-only file system, a removed run
directory. One name for each (`reason`), the status `metrics.json` records, and the line train.py
prints.

A write can fail as Python's `OSError` (with its errno), as h5py's `OSError`, or as a TensorFlow
error (`ResourceExhaustedError: ... No space left on device`) that carries only the text: both
are recognised. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from monitor.errors import StorageError

REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "run directory removed",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "I/O error",
}
# How each errno reads in an error message without one (TensorFlow's, HDF5's).
_TEXTS = {os.strerror(code): code for code in REASONS}
STATUSES = {f"failed: {reason}" for reason in REASONS.values()}  # resumable once the cause is gone


def errno_of(error: BaseException | None) -> int | None:
    """The errno of a failed write among `REASONS`, from the error or what caused it; None
    when the error is not a storage failure."""
    seen = 0
    while error is not None and seen < 8:
        code = getattr(error, "errno", None)
        if isinstance(error, OSError) and code in REASONS:
            return code
        text = str(error)
        for words, code in _TEXTS.items():
            if words in text:
                return code
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def is_storage_error(error: BaseException) -> bool:
    return errno_of(error) is not None


def mount_point(path: str) -> str:
    """The mount point holding `path` (or its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


@dataclass(frozen=True)
class Failure:
    """A write that failed: what was being written, during which epoch (1-based), the error."""

    what: str
    epoch: int
    error: BaseException

    @property
    def code(self) -> int:
        return errno_of(self.error) or errno.EIO

    @property
    def reason(self) -> str:
        return REASONS[self.code]

    @property
    def status(self) -> str:
        return f"failed: {self.reason}"


def stop_error(failure: Failure, run_dir: str, epochs_kept: int, resume_command: str) -> StorageError:
    """The StorageError train.py prints (one line) for `failure` in `run_dir`, which keeps
    `epochs_kept` committed epochs."""
    where = mount_point(run_dir)
    named = not failure.epoch or f"epoch {failure.epoch}" in failure.what
    during = "" if named else f" during epoch {failure.epoch}"
    head = (f"{failure.reason} ({os.strerror(failure.code)}) while {failure.what}{during}, in {run_dir}: "
            "the run stopped")
    if failure.code == errno.ENOENT and not os.path.isdir(run_dir):
        return StorageError(f"{head}. The run directory is gone: nothing is left to resume; start the "
                            "run again", failure)
    fix = _FIX.get(failure.code, "free space on {where}").format(where=where, run_dir=run_dir)
    fix = fix[0].upper() + fix[1:]
    if epochs_kept == 0:
        return StorageError(f"{head}; no epoch had finished, so nothing is kept. {fix} and start the run "
                            "again", failure)
    kept = "epoch 1 is kept" if epochs_kept == 1 else f"epochs 1-{epochs_kept} are kept"
    return StorageError(f"{head}; {kept}. {fix} and resume with: {resume_command}", failure)


_FIX = {
    errno.EDQUOT: "free space within your quota on {where}",
    errno.EROFS: "make {where} writable again",
    errno.EACCES: "make {run_dir} writable again",
    errno.EPERM: "make {run_dir} writable again",
    errno.EIO: "check the disk of {where}",
}
