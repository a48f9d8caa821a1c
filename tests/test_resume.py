"""Killed, terminated and broken runs: resume with every epoch once, clear stops, clear refusals.

train.py runs as a subprocess on a small subset of the synthetic MNIST (tests/synthetic_data.py),
as a user (or a cluster) would run and kill it. What survives is read back with EventAccumulator
and with the real `tensorboard` server (its default loader) on 127.0.0.1.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import pytest

from monitor.errors import MonitorError
from monitor.runfiles.matrices import FILE as MATRICES_FILE
from monitor.runfiles.model_file import load as load_model_safely
from tests.helpers import read_tags
from tests.synthetic_data import SIZES
from tests.tb_server import get_json, tensorboard

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = None  # the synthetic data's folder, set for every test by `_synthetic_data`
EPOCHS = 4
BATCHES = 27  # 1,200 images, 30% held out: 840 / batch 32
ARGS = ["--model", "simple", "--dataset", "mnist", "--limit", "1200", "--epochs", str(EPOCHS),
        "--picture-budget", "0"]  # every epoch's images, to check each is there once


@pytest.fixture(autouse=True)
def _synthetic_data(synthetic_data_dir, monkeypatch):
    """Every train.py here reads the synthetic data, whatever $MONITOR_DATA_DIR says."""
    monkeypatch.setattr(sys.modules[__name__], "DATA_DIR", str(synthetic_data_dir))


def train(logdir, *args, env=None, wait=True, fault=None):
    """train.py with `args`; `fault` (e.g. "kill-before-commit:2") runs it through
    tests/fault_injection.py, which injects the fault through runner.hooks.RunHooks."""
    entry = [str(ROOT / "tests" / "fault_injection.py"), fault] if fault else [str(ROOT / "train.py")]
    command = [sys.executable, *entry, *args]
    if "--resume" not in args:
        command += [*ARGS, "--logdir", str(logdir), "--data-dir", DATA_DIR]
    environment = {**os.environ, "CI": "1", **(env or {})}
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


def wait_for_lines(path: Path, count: int, process, timeout=300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"train.py ended early: {process.stderr.read()[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"{path} never had {count} lines")


def assert_every_epoch_once(run_dir: Path) -> None:
    """Every per-epoch tag of every directory holds steps 0..EPOCHS-1, each once (EventAccumulator)."""
    tags = read_tags(str(run_dir))
    for sub in ("train", "validation", "monitor"):
        for tag, steps in tags[sub].items():
            if tag.startswith("alerts/"):  # only at epochs where an alarm starts or ends
                assert steps == sorted(set(steps)), (sub, tag, steps)
                continue
            if tag in ("run/flags", "keras") or not steps:
                assert steps == [0], (sub, tag, steps)
                continue
            assert steps == expected_steps(tag), (sub, tag, steps)
    assert any(t.endswith("/histogram") for t in tags["train"])  # Keras' histograms are checked too
    lines = (run_dir / MATRICES_FILE).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(EPOCHS))
    per_class = (run_dir / "validation_per_class.csv").read_text().splitlines()
    assert sorted({int(line.split(",")[0]) for line in per_class[1:]}) == list(range(EPOCHS))
    assert len(per_class) == 1 + EPOCHS * 10


def expected_steps(tag: str) -> list[int]:
    """Epoch indices; Keras' `evaluation_*_vs_iterations` count optimizer steps instead."""
    if tag.endswith("_vs_iterations"):
        return [BATCHES * (e + 1) for e in range(EPOCHS)]
    return list(range(EPOCHS))


_get = get_json


def assert_server_shows_every_epoch_once(logdir: Path, run: str) -> None:
    """The plain `tensorboard --logdir` (default loader) serves each epoch once in every tag."""
    def loaded(base: str) -> bool:
        points = _get(base, "/data/plugin/scalars/scalars", run=f"{run}/validation", tag="epoch_loss")
        scalars = _get(base, "/data/plugin/scalars/tags").get(f"{run}/monitor", {})
        return len(points) >= EPOCHS and "averages/f1_macro" in scalars and len(_get(
            base, "/data/plugin/scalars/scalars", run=f"{run}/monitor", tag="averages/f1_macro")) >= EPOCHS

    with tempfile.TemporaryDirectory() as tmp, tensorboard(logdir, Path(tmp) / "tb.log", loaded) as base:
        time.sleep(2)  # one more reload, so nothing is half loaded
        for sub in ("train", "validation", "monitor"):
            for tag in _get(base, "/data/plugin/scalars/tags").get(f"{run}/{sub}", {}):
                points = _get(base, "/data/plugin/scalars/scalars", run=f"{run}/{sub}", tag=tag)
                steps = [p[1] for p in points]
                assert steps == expected_steps(tag), (sub, tag, steps)
        for tag in _get(base, "/data/plugin/histograms/tags").get(f"{run}/train", {}):
            points = _get(base, "/data/plugin/histograms/histograms", run=f"{run}/train", tag=tag)
            steps = [p[1] for p in points]
            assert steps == list(range(EPOCHS)), (tag, steps)
        images = _get(base, "/data/plugin/images/tags")[f"{run}/monitor"]
        assert images
        for tag in images:
            entries = _get(base, "/data/plugin/images/images", run=f"{run}/monitor", tag=tag)
            steps = [e["step"] for e in entries]
            assert steps == list(range(EPOCHS)), (tag, steps)


def test_sigkill_after_the_second_epoch_then_resume_gives_the_uninterrupted_run(tmp_path):
    full = train(tmp_path, "--run-name", "full")
    assert full.returncode == 0, full.stderr[-3000:]
    process = train(tmp_path, "--run-name", "killed", wait=False)
    wait_for_lines(tmp_path / "killed" / MATRICES_FILE, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    run_dir = tmp_path / "killed"
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "running"
    resumed = train(tmp_path, "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming:" in resumed.stdout
    assert_every_epoch_once(run_dir)
    assert_server_shows_every_epoch_once(tmp_path, "killed")
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert b["status"] == "completed" and b["resumed"] and b["epochs_run"] == EPOCHS
    # weights, optimizer state and the seeded shuffle all carried on: the same numbers
    assert b["history"] == a["history"]
    assert b["final"]["test"] == a["final"]["test"]
    assert b["alerts"] == a["alerts"]  # the resumed run's alarms replayed its first epochs
    assert not (run_dir / "backup").exists()


def test_a_kill_between_summaries_and_backup_resumes_without_duplicates(tmp_path):
    killed = train(tmp_path, "--run-name", "r", fault="kill-before-commit:2")
    assert killed.returncode == -signal.SIGKILL
    run_dir = tmp_path / "r"
    # epoch 2's summaries are on disk, its backup is not: the run holds epoch 2 once, uncommitted
    assert len((run_dir / MATRICES_FILE).read_text().splitlines()) == 2
    assert read_tags(str(run_dir))["validation"]["epoch_loss"] == [0, 1]
    assert sorted(os.listdir(run_dir / "backup")) == [".partial-0002", "epoch-0001"]
    resumed = train(tmp_path, "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "after epoch 1 of 4" in resumed.stdout
    assert_every_epoch_once(run_dir)
    assert_server_shows_every_epoch_once(tmp_path, "r")


def test_sigterm_records_an_interrupted_run_that_resumes(tmp_path):
    process = train(tmp_path, "--run-name", "t", wait=False)
    run_dir = tmp_path / "t"
    wait_for_lines(run_dir / MATRICES_FILE, 2, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM"
    assert record["epochs_run"] >= 1
    assert record["resume_command"] == f"python train.py --resume {run_dir}"
    assert f"Resume with: python train.py --resume {run_dir}" in err
    assert "Traceback" not in err
    resumed = train(tmp_path, "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_every_epoch_once(run_dir)


def test_a_non_finite_loss_stops_the_run_with_exit_code_3(tmp_path):
    out = train(tmp_path, "--run-name", "nan", "--learning-rate", "1e5")
    assert out.returncode == 3, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("train.py:")]
    assert len(errors) == 1 and "Traceback" not in out.stderr
    assert "epoch 1, batch" in errors[0] and "lower --learning-rate (now 100000)" in errors[0]
    text = (tmp_path / "nan" / "metrics.json").read_text()
    record = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert record["status"] == "failed: non-finite loss" and record["error"] in errors[0]
    assert not (tmp_path / "nan" / "model.keras").exists()
    tags = read_tags(str(tmp_path / "nan"))  # the summaries up to the stop are kept
    assert tags["monitor"]["per_class/recall/0"] == [0]


def test_metrics_json_writes_non_finite_numbers_as_null(tmp_path):
    from monitor.runfiles.record import write_json

    write_json(str(tmp_path / "m.json"),
               {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [1.0, None], "c": {"d": None}}


@pytest.fixture
def completed_run(tmp_path):
    run = tmp_path / "done"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"status": "completed", "flags": {"model": "simple"}}))
    return run


@pytest.fixture
def running_run(tmp_path):
    run = tmp_path / "running"
    run.mkdir()
    flags = {"model": "simple", "dataset": "mnist", "epochs": 4, "limit": 1200, "logdir": str(tmp_path)}
    (run / "metrics.json").write_text(json.dumps({"status": "running", "flags": flags}))
    return run


@pytest.mark.parametrize(("case", "expected"), [
    # 60000 with the real MNIST: test_data.py::test_real_data_sizes_and_the_limit_message
    ("limit", f"--limit 99999999 is more than the {SIZES['mnist'][0]} training images of mnist"),
    ("not_a_run", "not a run directory"),
    ("completed", "already completed"),
    ("other_model", "--model baseline conflicts with the run being resumed"),
    ("other_dataset", "--dataset cifar10 conflicts with the run being resumed"),
    ("logdir_file", "is a file, not a directory"),
    ("logdir_readonly", "is not writable"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, completed_run, running_run, case,
                                                         expected):
    logdir = tmp_path / "logs"
    args = {
        "limit": [*ARGS[:4], "--limit", "99999999", "--logdir", str(logdir), "--data-dir", DATA_DIR],
        "not_a_run": ["--resume", str(tmp_path)],
        "completed": ["--resume", str(completed_run)],
        "other_model": ["--resume", str(running_run), "--model", "baseline"],
        "other_dataset": ["--resume", str(running_run), "--dataset", "cifar10"],
        "logdir_file": [*ARGS, "--logdir", str(tmp_path / "afile")],
        "logdir_readonly": [*ARGS, "--logdir", str(tmp_path / "readonly" / "logs")],
    }[case]
    (tmp_path / "afile").write_text("not a directory")
    readonly = tmp_path / "readonly"
    if case == "logdir_readonly":
        readonly.mkdir(mode=0o555)
        if os.geteuid() == 0:  # root writes through mode bits, not through the immutable flag
            made = subprocess.run(["chattr", "+i", str(readonly)], capture_output=True, text=True)
            if made.returncode != 0:
                pytest.skip(f"cannot make a directory unwritable for root here: {made.stderr.strip()}")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    try:
        out = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    finally:
        if case == "logdir_readonly" and os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(readonly)], check=True)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:"), out.stderr[-3000:]
    assert expected in lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing left behind


def test_a_model_file_holding_code_is_refused_by_name(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(MonitorError, match="holds code .* safe_mode=True refused it"):
        load_model_safely(str(path))
