"""A full disk and a removed run directory mid-run: train.py stops at once with one line and exit
code 4, keeps its last committed epoch whole, and resumes once space is free.

The disk is real: a small tmpfs mounted for the test (root only; skipped elsewhere). train.py runs
as a subprocess on the synthetic MNIST of tests/test_resume.py; once its second epoch is committed,
a ballast file fills the file system, so the next write of the run fails for want of space
(wherever it happens: an event file, a JSONL line, the backup). Removing the ballast frees the space
again; the resumed run is read back with EventAccumulator and with the real `tensorboard`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import pytest

from monitor import storage
from monitor.errors import StorageError
from monitor.runfiles import backups
from tests import test_resume
from tests.test_resume import assert_every_epoch_once, assert_server_shows_every_epoch_once, train

DISK_MB = 24


@pytest.fixture(autouse=True)
def _synthetic_data(synthetic_data_dir, monkeypatch):
    monkeypatch.setattr(test_resume, "DATA_DIR", str(synthetic_data_dir))


@pytest.fixture
def small_disk(tmp_path):
    """A DISK_MB tmpfs at tmp_path/disk, unmounted afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small file system needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file into `folder` until its file system has no space left."""
    ballast = folder / "ballast"
    chunk = b"\0" * 65536
    with open(ballast, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(chunk)
    with open(ballast, "ab", buffering=0) as f, contextlib.suppress(OSError):  # the last few bytes too
        while True:
            f.write(b"\0")
    return ballast


def wait_for(path: Path, process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"train.py ended early ({process.returncode}): {process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} never appeared")
        time.sleep(0.05)


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "Segmentation" not in stderr, stderr[-4000:]
    assert "RuntimeWarning" not in stderr, stderr[-4000:]  # the run says it once, itself
    lines = [line for line in stderr.splitlines() if line.startswith("train.py:")]
    assert len(lines) == 1, stderr[-4000:]
    return lines[0]


def test_a_full_disk_stops_the_run_with_exit_4_and_it_resumes_once_space_is_freed(small_disk):
    logdir = small_disk / "logs"
    process = train(logdir, "--run-name", "r", wait=False)
    run_dir = logdir / "r"
    wait_for(run_dir / "backup" / "epoch-0002", process)
    ballast = fill(small_disk)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 4, stderr[-4000:]
    line = one_error_line(stderr)
    assert line.startswith("train.py: error: disk full (No space left on device) while "), line
    assert f"in {run_dir}: the run stopped" in line
    assert f"Free space on {small_disk} and resume with: python train.py --resume {run_dir}" in line
    kept = backups.latest(str(run_dir))
    assert kept is not None and kept.epochs_done >= 2 and f"epochs 1-{kept.epochs_done} are kept" in line
    with h5py.File(kept.weights_path, "r"):  # the committed backup is whole
        pass
    assert not [p for p in (run_dir / "backup").iterdir() if p.name.startswith(".partial")]
    record = json.loads((run_dir / "metrics.json").read_text())  # whole: written atomically
    assert record["status"] in ("failed: disk full", "running")
    if record["status"] == "failed: disk full":
        assert record["epochs_run"] == kept.epochs_done and "No space left on device" in record["error"]
    assert not list(run_dir.glob("*.tmp"))

    ballast.unlink()  # space is free again
    resumed = train(logdir, "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"after epoch {kept.epochs_done} of 4" in resumed.stdout
    assert_every_epoch_once(run_dir)
    assert_server_shows_every_epoch_once(logdir, "r")
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"


def test_a_full_disk_before_the_first_epoch_ends_keeps_nothing(small_disk):
    logdir = small_disk / "logs"
    process = train(logdir, "--run-name", "r", wait=False)
    wait_for(logdir / "r" / "metrics.json", process)
    ballast = fill(small_disk)
    _, stderr = process.communicate(timeout=300)
    ballast.unlink()
    assert process.returncode == 4, stderr[-4000:]
    line = one_error_line(stderr)
    assert "disk full" in line and "nothing is kept" in line and "start the run again" in line, line
    assert not (logdir / "r").exists()  # a run that never finished an epoch holds nothing to resume


def test_a_run_directory_removed_mid_run_stops_with_exit_4(tmp_path):
    process = train(tmp_path, "--run-name", "gone", wait=False)
    run_dir = tmp_path / "gone"
    wait_for(run_dir / "backup" / "epoch-0002", process)
    for _ in range(50):  # the run may write a file into a folder being removed: remove again
        shutil.rmtree(run_dir, ignore_errors=True)
        if not run_dir.exists():
            break
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 4, stderr[-4000:]
    line = one_error_line(stderr)
    assert "run directory removed" in line and "nothing is left to resume" in line, line
    assert not run_dir.exists()  # not made again by a late write


def test_a_failed_run_of_a_full_disk_may_be_resumed_but_not_one_of_a_nan(tmp_path):
    from monitor.errors import MonitorError
    from monitor.resume import _check_resumable

    _check_resumable(str(tmp_path), "failed: disk full")
    _check_resumable(str(tmp_path), "failed: read-only file system")
    with pytest.raises(MonitorError, match="would fail again"):
        _check_resumable(str(tmp_path), "failed: non-finite loss")


@pytest.mark.parametrize(("error", "reason", "fix"), [
    (OSError(errno.ENOSPC, "No space left on device"), "disk full", "Free space on /"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded", "Free space within your quota"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system", "Make / writable again"),
    (RuntimeError("Failed to flush 4 events to /x; No space left on device"), "disk full", "Free space"),
])
def test_each_storage_failure_is_one_line_naming_the_cause_and_the_fix(tmp_path, error, reason, fix):
    failure = storage.Failure("writing the backup of epoch 3", 3, error)
    err = storage.stop_error(failure, str(tmp_path), 2, f"python train.py --resume {tmp_path}")
    assert isinstance(err, StorageError) and "\n" not in str(err)
    assert str(err).startswith(f"{reason} (") and f"{fix}" in str(err)
    assert str(err).endswith(f"and resume with: python train.py --resume {tmp_path}")
    assert failure.status == f"failed: {reason}" and failure.status in storage.STATUSES
    assert storage.errno_of(ValueError("a bug")) is None


def test_metrics_json_keeps_its_last_whole_version_where_a_new_one_cannot_be_written(small_disk):
    from monitor.runfiles import record

    record.write_json(str(small_disk / "metrics.json"), {"status": "running", "epochs_run": 2})
    ballast = fill(small_disk)
    with pytest.raises(OSError) as raised:
        record.write_json(str(small_disk / "metrics.json"), {"status": "failed", "pad": "x" * 10**5})
    ballast.unlink()
    assert raised.value.errno == errno.ENOSPC
    assert json.loads((small_disk / "metrics.json").read_text()) == {"status": "running", "epochs_run": 2}
    assert sorted(p.name for p in small_disk.iterdir()) == ["metrics.json"]

