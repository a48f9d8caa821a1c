"""Damaged logs: an event file cut short or with a corrupted record, a JSONL/CSV line cut short.

Every reader of ours (the event-file reader under `monitor.report` and `--resume`, the JSONL and
CSV readers, `monitor.compare`) reads every intact epoch and says once what it skipped;
`python -m monitor.repair` rewrites a damaged file without its damaged records. The dashboard,
on the real `tensorboard` (both loaders: `--load_fast=true`, the Rust data server, and `false`, the
Python loader), serves every intact epoch of a damaged file before any repair (its plugin reads on
past the damage, where TensorBoard's loaders stop) and says what was skipped in the run list; a
cut-short file is served whole up to the cut; after a repair, every intact epoch as before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from monitor.dashboard import metadata
from monitor.repair import repair
from monitor.runfiles import damage, event_files, lines, matrices, per_class_csv, test_confusion
from tests.synthetic_logs import LiveRun, write_run
from tests.tb_server import get_json, tensorboard

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = f"/data/plugin/{metadata.PLUGIN_NAME}"
EPOCHS = 12
DAMAGED_STEP = 5


def _records(path: str) -> list[tuple[int, int, int, list[str]]]:
    """(offset, size, step, tags) of every record of an intact event file."""
    out, offset = [], 0
    for framed, data in event_files.framed_records(path):
        event = event_files.event_pb2.Event.FromString(data)
        out.append((offset, len(framed), event.step, [v.tag for v in event.summary.value]))
        offset += len(framed)
    return out


def damage_file(run_dir: Path, how: str) -> None:
    """Damage the event file of `run_dir`: `cut` (cut short inside the last epoch's counts),
    `data` (a bit flipped in the counts of step DAMAGED_STEP), `length` (a bit flipped in that
    record's length), `garbage` (junk bytes written between two records)."""
    path = event_files.paths(str(run_dir))[0]
    raw = bytearray(Path(path).read_bytes())
    records = _records(path)
    offset, size, _, _ = next(r for r in records if r[2] == DAMAGED_STEP and "confusion" in r[3][0])
    if how == "cut":
        last, last_size, _, _ = next(r for r in records if r[2] == EPOCHS - 1 and "confusion" in r[3][0])
        raw = raw[:last + last_size // 2]
    elif how == "data":
        raw[offset + size - 12] ^= 0x04
    elif how == "length":
        raw[offset + 1] ^= 0x01
    elif how == "garbage":
        raw[offset:offset] = b"\x07" * 333
    Path(path).write_bytes(bytes(raw))


def confusion_steps(run_dir: Path, damaged: event_files.Damage | None = None) -> list[int]:
    path = event_files.paths(str(run_dir))[0]
    return [e.step for e in event_files.events(path, damaged)
            if any("confusion" in v.tag for v in e.summary.value)]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """One intact run and one of each damage (10 classes, 12 epochs); `<how>-repaired` too."""
    root = tmp_path_factory.mktemp("damaged")
    write_run(root / "intact" / "monitor", classes=10, epochs=EPOCHS, mistakes=2)
    for how in ("cut", "data", "length", "garbage"):
        for name in (how, f"{how}-repaired"):
            shutil.copytree(root / "intact", root / name)
            damage_file(root / name / "monitor", how)
        repair(str(root / f"{how}-repaired"))
    return root


ALL = list(range(EPOCHS))
WITHOUT_DAMAGED = [s for s in ALL if s != DAMAGED_STEP]


@pytest.mark.parametrize(("how", "steps", "said"), [
    ("cut", ALL[:-1], "its last record is cut short"),
    ("data", WITHOUT_DAMAGED, "1 damaged record ("),
    ("length", WITHOUT_DAMAGED, "1 damaged record ("),
    ("garbage", ALL, "1 damaged record (333 bytes"),
])
def test_the_reader_keeps_every_intact_record_and_counts_what_it_skipped(logs, how, steps, said):
    damaged = event_files.Damage("x")
    assert confusion_steps(logs / how / "monitor", damaged) == steps
    assert said in damaged.describe()
    assert confusion_steps(logs / "intact" / "monitor") == ALL
    repaired = event_files.Damage("x")  # repaired: the same epochs, nothing damaged left
    assert confusion_steps(logs / f"{how}-repaired" / "monitor", repaired) == steps
    assert repaired.describe() == ""


def test_checksums_match_tensorboards_on_long_and_short_data():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

    from monitor.runfiles import checksums

    assert checksums._native is not None  # google-crc32c's C extension, as requirements.txt installs it
    rng = np.random.default_rng(0)
    for size in (0, 1, 8, 4095, 32 * 1024 - 1, 32 * 1024, 100_003, 1 << 20):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert checksums.masked_crc32c(data) == reference(data), size
        assert checksums.python_crc32c(data) == checksums.crc32c(data), size  # the fallback agrees


def _served(base: str, run: str) -> tuple[list[int], int]:
    """(steps of the matrices route, status of a mistakes request after the damaged step)."""
    answer = get_json(base, f"{PLUGIN}/matrices", run=run, split="validation")
    steps = [e["step"] for e in answer["epochs"]]
    mistakes = get_json(base, f"{PLUGIN}/mistakes", run=run, split="validation", step=steps[-1])
    return steps, len(mistakes["mistakes"])


def _expected(how: str) -> list[int]:
    return ALL[:-1] if how.startswith("cut") else ALL if how.startswith("garbage") or how == "intact" \
        else WITHOUT_DAMAGED


@pytest.mark.parametrize("load_fast", ["true", "false"], ids=["rust-loader", "python-loader"])
def test_tensorboard_serves_every_intact_epoch_of_a_damaged_cut_or_repaired_file(logs, tmp_path, load_fast):
    names = ["intact", *(f"{how}{end}" for how in ("cut", "data", "length", "garbage")
                         for end in ("", "-repaired"))]

    def ready(base: str) -> bool:
        runs = {r["run"]: r for r in get_json(base, f"{PLUGIN}/runs")["runs"]}
        return len(runs) == 9 and runs["intact/monitor"]["last_step"] == EPOCHS - 1

    with tensorboard(logs, tmp_path / "tb.log", ready, "--load_fast", load_fast,
                     "--reload_interval", "1") as base:
        deadline, served = time.monotonic() + 60, {}
        while time.monotonic() < deadline:  # the damage watch reads the files in the background
            runs = {r["run"]: r for r in get_json(base, f"{PLUGIN}/runs")["runs"]}
            served = {name: _served(base, f"{name}/monitor") for name in names}
            if all(served[n] == (_expected(n), 2) for n in names) and runs["data/monitor"]["damaged"]:
                break
            time.sleep(1)
        assert served == {n: (_expected(n), 2) for n in names}
        damaged = {name: runs[f"{name}/monitor"]["damaged"] for name in names}
        for name in ("data", "length", "garbage"):
            assert "events.out.tfevents." in damaged[name] and "1 damaged record (" in damaged[name], damaged
        assert "333 bytes" in damaged["garbage"]
        assert all(damaged[n] == "" for n in names if n not in ("data", "length", "garbage")), damaged
        if load_fast == "false":  # the page says it, as text, above the matrices (one loader is enough)
            _page_says_the_damage(base, "data/monitor", damaged["data"])
    said = [line for line in (tmp_path / "tb.log").read_text().splitlines() if "DamagedFileWarning" in line]
    assert len(said) == 3, said  # the server's log: once per damaged file


def _page_says_the_damage(base: str, run: str, text: str) -> None:
    from tests.browser import chromium, wait_for

    with chromium() as driver:
        driver.get(base + "/data/plugin_entry.html?name=training_monitor")
        wait_for(driver, "return document.querySelector('.panel-title')")
        driver.execute_script(
            "const s = document.getElementById('run');"
            "s.value = Array.from(s.options).find(o => o.text === arguments[0]).value;"
            "s.dispatchEvent(new Event('change'));", f"{run} · validation")
        shown = wait_for(driver, "const t = document.getElementById('damaged').textContent;"
                                 "return t.startsWith(arguments[0]) && t", 20.0, run)
        assert shown == (f"{run} · validation: damaged event file, every intact epoch shown ({text}). "
                         "TensorBoard's other tabs stop at the damage until `python -m monitor.repair <run "
                         "folder>` rewrites the file.")
        slider = driver.find_element("id", "epoch")  # every intact epoch on the slider, up to the newest
        assert int(slider.get_attribute("max")) == len(WITHOUT_DAMAGED) - 1
        assert driver.find_element("id", "epoch-label").text.endswith(f" / {EPOCHS}")


def test_the_damage_watch_reads_on_as_the_run_grows_and_reads_again_after_a_repair(logs, tmp_path):
    from monitor.dashboard.damaged_runs import RunState, read_new

    run = tmp_path / "data"
    shutil.copytree(logs / "data", run)
    state = RunState(str(run / "monitor"))
    with pytest.warns(damage.DamagedFileWarning, match="1 damaged record"):
        read_new(state)
    steps = lambda: sorted({s for tag, series in state.tensors.read(list(state.tensors.listing())).items()  # noqa: E731
                            if "confusion" in tag for s in (d.step for d in series)})
    assert steps() == WITHOUT_DAMAGED and "1 damaged record (" in state.text
    resumed = LiveRun(run / "monitor", classes=10, epochs=EPOCHS + 3, mistakes=2)  # a new event file
    for epoch in range(EPOCHS, EPOCHS + 3):
        resumed.write(epoch)
    resumed.close()
    read_new(state)
    assert steps() == WITHOUT_DAMAGED + [EPOCHS, EPOCHS + 1, EPOCHS + 2]
    repair(str(run))
    read_new(state)  # the repaired file read from the start: nothing skipped now, the same epochs
    assert state.text == "" and steps() == WITHOUT_DAMAGED + [EPOCHS, EPOCHS + 1, EPOCHS + 2]


def test_jsonl_and_csv_lines_cut_short_are_left_out_and_said_once(tmp_path):
    cm = np.array([[3, 1], [0, 4]])
    for epoch in range(3):
        matrices.append(str(tmp_path), epoch, ["cat", "dog"], cm)
        per_class_csv.append(str(tmp_path), cm, ["cat", "dog"], epoch)
    jsonl, csv = Path(matrices.path(str(tmp_path))), Path(per_class_csv.path(str(tmp_path)))
    text = jsonl.read_text().splitlines()
    jsonl.write_text("\n".join([text[0], text[1][:25], text[2]]) + "\n")  # the middle line cut short
    csv.write_text(csv.read_text()[:-9])  # the last row cut short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [line["epoch"] for line in matrices.read_lines(str(tmp_path))] == [0, 2]
        assert [line["epoch"] for line in matrices.read_lines(str(tmp_path))] == [0, 2]
        table = per_class_csv.read(str(tmp_path))
        assert lines.read_json_lines(str(tmp_path / "missing.jsonl")) == []
    assert table["epoch"].tolist() == [0, 0, 1, 1, 2] and table["support"].dtype == np.int64
    said = [str(w.message) for w in caught if issubclass(w.category, damage.DamagedFileWarning)]
    assert said == [f"{jsonl}: 1 damaged or cut-short line skipped; the rest is read",
                    f"{csv}: 1 damaged or cut-short row skipped; the rest is read"]


def test_a_test_matrix_cut_short_is_left_out(tmp_path):
    test_confusion.write(str(tmp_path), np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    path = Path(test_confusion.path(str(tmp_path)))
    path.write_text(path.read_text()[:-4])
    with pytest.warns(damage.DamagedFileWarning, match="confusion_matrix_test.csv: damaged"):
        assert test_confusion.read(str(tmp_path)) is None


def _run_dir(root: Path, logs: Path, how: str, status: str = "completed") -> Path:
    """A run directory: the synthetic `how` log as its monitor/ files, a metrics.json, a JSONL."""
    run = root / how
    shutil.copytree(logs / how, run)
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    (run / "metrics.json").write_text(json.dumps({"status": status, "flags": {"model": "simple", "epochs": 2},
                                                  "history": history, "epochs_run": 2}))
    cm = np.eye(10, dtype=np.int64) * 3
    for epoch in range(2):
        matrices.append(str(run), epoch, [f"c{i}" for i in range(10)], cm)
    jsonl = Path(matrices.path(str(run)))
    jsonl.write_text(jsonl.read_text() + '{"epoch": 2, "class_na')  # a line cut short
    return run


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_report_compare_and_repair_read_every_intact_epoch_and_say_once_what_they_skipped(logs, tmp_path):
    run = _run_dir(tmp_path, logs, "length")
    other = _run_dir(tmp_path, logs, "intact")
    report = _cli("monitor.report", str(run))
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr[-3000:]
    said = [line for line in report.stderr.splitlines()
            if line.startswith("python -m monitor.report: warning:")]
    assert len(said) == 2, report.stderr[-3000:]  # the event file once, the JSONL once
    assert any("1 damaged record (" in line and "monitor/events.out.tfevents" in line for line in said)
    assert any("1 damaged or cut-short line skipped" in line for line in said)
    assert (run / "report.html").exists()

    (other / "metrics.json").write_text('{"status": "completed", "fla')  # cut short
    compare = _cli("monitor.compare", str(run), str(other), "--out", str(tmp_path / "cmp"))
    assert compare.returncode == 0, compare.stderr[-3000:]
    assert "| length |" in compare.stdout and "| intact |" not in compare.stdout
    assert "intact/metrics.json: damaged (cut short or not JSON), so that run is left out" in compare.stderr

    repaired = _cli("monitor.repair", str(run))
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert "1 damaged record (" in repaired.stdout and "rewritten without it" in repaired.stdout
    assert confusion_steps(run / "monitor") == WITHOUT_DAMAGED
    assert [line["epoch"] for line in matrices.read_lines(str(run))] == [0, 1]
    again = _cli("monitor.report", str(run))
    assert again.returncode == 0 and "warning" not in again.stderr, again.stderr[-3000:]


def test_repair_leaves_a_running_run_alone(logs, tmp_path):
    run = _run_dir(tmp_path, logs, "data", status="running")
    before = event_files.paths(str(run / "monitor"))[0]
    size = Path(before).stat().st_size
    out = _cli("monitor.repair", str(run))
    assert out.returncode == 2 and "still running" in out.stderr
    assert Path(before).stat().st_size == size
    assert _cli("monitor.repair", "--force", str(run)).returncode == 0
    assert Path(before).stat().st_size < size


def test_resume_repairs_a_damaged_event_file_and_keeps_every_intact_epoch(synthetic_data_dir, tmp_path,
                                                                         monkeypatch):
    from tests import test_resume
    from tests.helpers import read_tags

    monkeypatch.setattr(test_resume, "DATA_DIR", str(synthetic_data_dir))
    killed = test_resume.train(tmp_path, "--run-name", "r", fault="kill-before-commit:3")
    run_dir = tmp_path / "r"
    assert killed.returncode < 0
    path = event_files.paths(str(run_dir / "monitor"))[0]
    records = _records(path)
    offset, size, _, tags = next(r for r in records
                                 if r[2] == 1 and any("per_class/recall" in t for t in r[3]))
    raw = bytearray(Path(path).read_bytes())
    raw[offset + size - 10] ^= 0x20  # a bit flip in epoch 2's per-class scalars
    Path(path).write_bytes(bytes(raw))
    resumed = test_resume.train(tmp_path, "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    repaired = [line for line in resumed.stdout.splitlines() if line.startswith("Repaired:")]
    assert len(repaired) == 1 and "1 damaged record (" in repaired[0], resumed.stdout[-3000:]
    monitor = read_tags(str(run_dir))["monitor"]
    for tag, steps in monitor.items():
        if tag in tags:  # the damaged record's tags lost epoch 2, and only it
            assert steps == [0, 2, 3], (tag, steps)
        elif tag.startswith(("per_class/", "averages/")):
            assert steps == [0, 1, 2, 3], (tag, steps)
