"""The dashboard's data of binary and multi-label heads over HTTP, with both of TensorBoard's loaders.

Logs written with the dashboard's own writers (tests/synthetic_logs.py): `bin` (a binary head,
user's threshold 0.37: score histograms and exact 2x2 counts every epoch), `ml` (a multi-label
head, its counts and co-occurrence of errors), `ml-bare` (multi-label, no co-occurrence) and
`old` (two classes, no score histograms: a log from before they existed). A real `tensorboard`
(`--load_fast=true`: the Rust data server; `false`: the Python loader) must say which head each
run has, serve every epoch's histograms and counts as written, and `since=k` only the epochs
after k, right across the block boundary (epoch 10 -> 11) as the log grows.
"""

from __future__ import annotations

import time
import urllib.error

import numpy as np
import pytest
import tensorflow as tf

from monitor.dashboard import metadata, summary
from monitor.dashboard.plugin import cells_array
from tests.synthetic_logs import BinaryLiveRun, LiveRun, MultiLabelLiveRun
from tests.tb_server import get_json, tensorboard

PLUGIN = f"/data/plugin/{metadata.PLUGIN_NAME}"


def _runs(base: str) -> dict:
    return {r["run"]: r for r in get_json(base, f"{PLUGIN}/runs")["runs"]}


def _wait_last_step(base: str, run: str, step: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = _runs(base).get(run)
        if entry and entry["last_step"] == step:
            return entry
        time.sleep(0.25)
    raise AssertionError(f"{run}: last step {step} not served within {timeout} s: {_runs(base)}")


def _get(base: str, route: str, run: str, since: int | None = None) -> dict:
    params = {"run": run, "split": "validation"} | ({} if since is None else {"since": since})
    return get_json(base, f"{PLUGIN}/{route}", **params)


def _check_binary(answer: dict, run: BinaryLiveRun, steps: list[int]) -> None:
    assert (answer["threshold"], answer["num_thresholds"], answer["class_names"]) == (0.37, 101, run.names)
    assert [e["step"] for e in answer["epochs"]] == steps
    for epoch in answer["epochs"]:
        hists = run.hists[epoch["step"]]
        assert epoch["scores"] == hists.reshape(-1).tolist()
        cells = cells_array(epoch["cells"])
        dense = np.zeros((2, 2), np.int64)
        dense[cells[:, 0], cells[:, 1]] = cells[:, 2]
        np.testing.assert_array_equal(dense, run.matrices[epoch["step"]])
        np.testing.assert_array_equal(dense.sum(axis=1), hists.sum(axis=1))  # every image in both


def _check_multilabel(answer: dict, run: MultiLabelLiveRun, steps: list[int]) -> None:
    assert (answer["class_names"], answer["threshold"]) == (run.names, 0.5)
    assert [e["step"] for e in answer["epochs"]] == steps
    for epoch in answer["epochs"]:
        served = {k: v for k, v in epoch.items() if k not in ("step", "wall_time")}
        assert served == run.counts[epoch["step"]]


@pytest.mark.parametrize("load_fast", ["true", "false"], ids=["rust-loader", "python-loader"])
def test_binary_and_multilabel_runs_are_served_and_followed(tmp_path, load_fast):
    binary = BinaryLiveRun(tmp_path / "bin" / "monitor", epochs=12, threshold=0.37, seed=1)
    multi = MultiLabelLiveRun(tmp_path / "ml" / "monitor", epochs=12, seed=2)
    bare = MultiLabelLiveRun(tmp_path / "ml-bare" / "monitor", epochs=2, seed=3, cooccurrence=False)
    old = LiveRun(tmp_path / "old" / "monitor", classes=2, epochs=2, mistakes=0)
    for _ in range(10):
        binary.write()
        multi.write()
    for run in (bare, old):
        run.write()
        run.write()

    def ready(base):
        runs = _runs(base)
        return {name: r["last_step"] for name, r in runs.items()} == {
            "bin/monitor": 9, "ml/monitor": 9, "ml-bare/monitor": 1, "old/monitor": 1}

    flags = (f"--load_fast={load_fast}", "--reload_interval=1")
    with tensorboard(tmp_path, tmp_path / "tb.log", ready, *flags) as base:
        runs = _runs(base)
        assert {name: (r["head"], r["binary"], r["classes"], r["epochs"]) for name, r in runs.items()} == {
            "bin/monitor": ("binary", True, 2, 10), "ml/monitor": ("multi_label", False, 5, 10),
            "ml-bare/monitor": ("multi_label", False, 5, 2), "old/monitor": ("single_label", False, 2, 2)}
        _check_binary(_get(base, "matrices", "bin/monitor"), binary, list(range(10)))
        _check_binary(_get(base, "matrices", "bin/monitor", since=6), binary, [7, 8, 9])
        _check_multilabel(_get(base, "multilabel", "ml/monitor"), multi, list(range(10)))
        _check_multilabel(_get(base, "multilabel", "ml/monitor", since=8), multi, [9])
        _check_multilabel(_get(base, "multilabel", "ml-bare/monitor"), bare, [0, 1])
        assert _get(base, "multilabel", "ml/monitor", since=9)["epochs"] == []
        old_answer = _get(base, "matrices", "old/monitor")
        assert "threshold" not in old_answer and all("scores" not in e for e in old_answer["epochs"])

        binary.write()  # epoch 11: the first of the tags epochs_011-020
        multi.write()
        _wait_last_step(base, "bin/monitor", 10)
        _wait_last_step(base, "ml/monitor", 10)
        _check_binary(_get(base, "matrices", "bin/monitor", since=9), binary, [10])
        _check_binary(_get(base, "matrices", "bin/monitor", since=8), binary, [9, 10])
        _check_multilabel(_get(base, "multilabel", "ml/monitor", since=9), multi, [10])
        _check_multilabel(_get(base, "multilabel", "ml/monitor"), multi, list(range(11)))

        for route, run in (("matrices", "ml/monitor"), ("multilabel", "bin/monitor"), ("multilabel", "nope")):
            with pytest.raises(urllib.error.HTTPError) as caught:
                _get(base, route, run)
            assert caught.value.code == 404, (route, run)
    for run in (binary, multi, bare, old):
        run.close()


def test_the_writers_check_their_input(tmp_path):
    counts = {"count": 3, "exact": 1, "tp": [1, 0], "fp": [0, 1], "fn": [1, 0], "tn": [1, 2],
              "cooccurrence": [[0, 1, 1]], "threshold": 0.5}
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        with pytest.raises(ValueError, match="two of one shape"):
            summary.score_histograms(np.zeros(101), np.zeros(100), 0.5, step=0)
        with pytest.raises(ValueError, match="3 class names"):
            summary.multilabel_counts(counts, ["a", "b", "c"], step=0)
        assert summary.multilabel_counts(counts, ["a", "b"], step=0)
        assert summary.score_histograms(np.ones(11, np.int64), np.ones(11, np.int64), 0.3, step=0)


def test_new_kinds_parse_and_unknown_ones_are_skipped():
    meta = metadata.create_summary_metadata("scores", "validation", threshold=0.3, num_thresholds=101)
    content = metadata.parse_plugin_content(meta.plugin_data.content)
    assert (content["kind"], content["threshold"], content["num_thresholds"]) == ("scores", 0.3, 101)
    assert metadata.parse_plugin_content(b'{"version": 1, "kind": "someday", "split": "validation"}') is None
