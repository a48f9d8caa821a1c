"""The dashboard's "what is new" answers on a log still being written, with both loaders.

A real `tensorboard` (`--load_fast=true`: the Rust data server; `--load_fast=false`: the
Python loader) on a log the test keeps writing (tests/synthetic_logs.py `LiveRun`): `runs`
gives each run and split's last step, `matrices?since=k` only the epochs after step k,
right across the block boundary of `--epochs-per-tag` (epoch 10 -> 11: a new tag), with a
block size other than 10, and for a test split that appears at a run's end.
"""

from __future__ import annotations

import time
import urllib.error

import numpy as np
import pytest

from monitor.dashboard.plugin import cells_array
from tests.synthetic_logs import LiveRun
from tests.tb_server import get_json, tensorboard

PLUGIN = "/data/plugin/training_monitor"


def _runs(base: str) -> dict:
    return {(r["run"], r["split"]): r for r in get_json(base, f"{PLUGIN}/runs")["runs"]}


def _wait_last_step(base: str, run: str, split: str, step: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = _runs(base).get((run, split))
        if entry and entry["last_step"] == step:
            return entry
        time.sleep(0.25)
    raise AssertionError(f"{run} {split}: last step {step} not served within {timeout} s: {_runs(base)}")


def _since(base: str, run: str, since: int | None, split: str = "validation") -> dict:
    params = {"run": run, "split": split} | ({} if since is None else {"since": since})
    return get_json(base, f"{PLUGIN}/matrices", **params)


def _check(answer: dict, matrices: list[np.ndarray], steps: list[int]) -> None:
    assert [e["step"] for e in answer["epochs"]] == steps
    for epoch in answer["epochs"]:
        cells = cells_array(epoch["cells"])
        dense = np.zeros_like(matrices[epoch["step"]])
        dense[cells[:, 0], cells[:, 1]] = cells[:, 2]
        np.testing.assert_array_equal(dense, matrices[epoch["step"]])


@pytest.mark.parametrize("load_fast", ["true", "false"], ids=["rust-loader", "python-loader"])
def test_since_and_last_step_follow_a_growing_log(tmp_path, load_fast):
    live = LiveRun(tmp_path / "live" / "monitor", classes=10, epochs=12, seed=4, mistakes=2)
    small = LiveRun(tmp_path / "small" / "monitor", classes=5, epochs=7, seed=5, mistakes=0, epochs_per_tag=3)
    for _ in range(10):
        live.write()
    for _ in range(7):
        small.write()

    def ready(base):
        runs = _runs(base)
        return (runs.get(("live/monitor", "validation"), {}).get("last_step") == 9
                and runs.get(("small/monitor", "validation"), {}).get("last_step") == 6)

    flags = (f"--load_fast={load_fast}", "--reload_interval=1")
    with tensorboard(tmp_path, tmp_path / "tb.log", ready, *flags) as base:
        entry = _runs(base)[("live/monitor", "validation")]
        assert (entry["epochs"], entry["last_step"]) == (10, 9) and entry["last_wall_time"] > 0
        _check(_since(base, "live/monitor", None), live.matrices, list(range(10)))
        _check(_since(base, "live/monitor", 4), live.matrices, [5, 6, 7, 8, 9])
        assert _since(base, "live/monitor", 9) == {"run": "live/monitor", "split": "validation",
                                                  "class_names": live.names, "last_step": 9, "epochs": []}
        # blocks of 3 epochs: epochs_001-003, 004-006, 007-009
        _check(_since(base, "small/monitor", 2), small.matrices, [3, 4, 5, 6])
        _check(_since(base, "small/monitor", 5), small.matrices, [6])

        live.write()  # epoch 11: the first of the tag epochs_011-020
        after = _wait_last_step(base, "live/monitor", "validation", 10)
        assert after["last_wall_time"] >= entry["last_wall_time"]
        _check(_since(base, "live/monitor", 9), live.matrices, [10])
        _check(_since(base, "live/monitor", 8), live.matrices, [9, 10])
        assert _since(base, "live/monitor", 10)["epochs"] == []
        live.write()
        _wait_last_step(base, "live/monitor", "validation", 11)
        _check(_since(base, "live/monitor", 10), live.matrices, [11])
        _check(_since(base, "live/monitor", None), live.matrices, list(range(12)))

        test = LiveRun(tmp_path / "live" / "test", classes=10, epochs=12, seed=6, mistakes=0, split="test")
        test.write(11)  # the test split, written at the run's end
        assert _wait_last_step(base, "live/test", "test", 11)["epochs"] == 12
        _check(_since(base, "live/test", 10, split="test"), [None] * 11 + test.matrices, [11])
        with pytest.raises(urllib.error.HTTPError) as caught:
            get_json(base, f"{PLUGIN}/matrices", run="live/monitor", split="validation", since="x")
        assert caught.value.code == 400
    for run in (live, small, test):
        run.close()
