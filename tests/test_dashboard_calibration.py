"""The dashboard's calibration statistics and alerts over HTTP, from the real `tensorboard`.

- Synthetic logs (tests/synthetic_logs.py) served with both of TensorBoard's loaders
  (`--load_fast=true`: the Rust data server; `false`: the Python loader): `cal` (3 classes, each
  epoch's calibration statistics, alerts at epochs 3, 5 and 11), `cal` split `test` (one epoch),
  `ml` (multi-label, alerts at epoch 2, no calibration) and `old` (neither: a log from before these
  kinds). The numbers come back exactly as written, `since=k` gives only the later epochs' (across
  the block boundary 10 -> 11), and the runs list says which runs have calibration.
- A real fit: a tiny Keras model, 3 epochs with `monitoring_callbacks` on shuffled labels (so an
  alarm fires). The calibration served per epoch equals `validation_calibration.jsonl`'s lines (both
  written from the same capture), and the last epoch's equals a brute-force binning of
  `model.predict(x_val)` (15 bins, bin min(floor(conf * 15), 14), conf the top probability): counts
  equal, ECE within 1e-5. The alerts served equal the suite's `alerts`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf

from callbacks import close_suite, monitoring_callbacks, suite_alarms
from monitor.dashboard import metadata, summary
from monitor.runfiles import calibration_lines
from tests.helpers import tiny_data, tiny_model
from tests.synthetic_logs import LiveRun, MultiLabelLiveRun, alert
from tests.tb_server import get_json, tensorboard

PLUGIN = f"/data/plugin/{metadata.PLUGIN_NAME}"
BINS = 15


def _runs(base: str) -> dict:
    return {(r["run"], r["split"]): r for r in get_json(base, f"{PLUGIN}/runs")["runs"]}


def _get(base: str, route: str, run: str, split: str = "validation", since: int | None = None) -> dict:
    params = {"run": run, "split": split} | ({} if since is None else {"since": since})
    return get_json(base, f"{PLUGIN}/{route}", **params)


def _check_calibration(answer: dict, run: LiveRun, steps: list[int]) -> None:
    assert [e["step"] for e in answer["epochs"]] == steps
    for epoch in answer["epochs"]:
        written = run.calibration[epoch["step"]]
        expected = np.stack([written[k] for k in ("count", "confidence_sum", "correct")]).astype(np.float64)
        assert epoch["calibration"] == expected.reshape(-1).tolist()  # float64, exactly as written


def _served_alerts(answer: dict) -> dict[int, list[dict]]:
    return {entry["step"]: entry["alerts"] for entry in answer["alerts"]}


SYNTHETIC_ALERTS = {2: [alert(3, "not_learning")],
                    4: [alert(5, "not_learning", "ended"),
                        alert(5, "overfitting", message="<b>loss</b> & co")],
                    10: [alert(11, "diverging")]}


@pytest.mark.parametrize("load_fast", ["true", "false"], ids=["rust-loader", "python-loader"])
def test_calibration_and_alerts_are_served_as_written_and_followed(tmp_path, load_fast):
    cal = LiveRun(tmp_path / "cal" / "monitor", classes=3, epochs=12, mistakes=0, calibration=True,
                  alerts=SYNTHETIC_ALERTS, seed=4)
    test = LiveRun(tmp_path / "cal" / "test", classes=3, epochs=1, mistakes=0, split="test", calibration=True)
    multi = MultiLabelLiveRun(tmp_path / "ml" / "monitor", epochs=3, seed=2,
                              alerts={1: [alert(2, "collapse")]})
    old = LiveRun(tmp_path / "old" / "monitor", classes=3, epochs=2, mistakes=0)
    for _ in range(10):
        cal.write()
    for run in (test, multi, multi, old, old):
        run.write()

    def ready(base):
        return {key: r["last_step"] for key, r in _runs(base).items()} == {
            ("cal/monitor", "validation"): 9, ("cal/test", "test"): 0, ("ml/monitor", "validation"): 1,
            ("old/monitor", "validation"): 1}

    flags = (f"--load_fast={load_fast}", "--reload_interval=1")
    with tensorboard(tmp_path, tmp_path / "tb.log", ready, *flags) as base:
        runs = _runs(base)
        assert {key: (r["calibration"], r["alerts"]) for key, r in runs.items()} == {
            ("cal/monitor", "validation"): (True, True), ("cal/test", "test"): (True, False),
            ("ml/monitor", "validation"): (False, True), ("old/monitor", "validation"): (False, False)}
        whole = _get(base, "matrices", "cal/monitor")
        _check_calibration(whole, cal, list(range(10)))
        assert _served_alerts(whole) == {2: SYNTHETIC_ALERTS[2], 4: SYNTHETIC_ALERTS[4]}
        later = _get(base, "matrices", "cal/monitor", since=3)
        _check_calibration(later, cal, list(range(4, 10)))
        assert _served_alerts(later) == {4: SYNTHETIC_ALERTS[4]}
        assert _served_alerts(_get(base, "matrices", "cal/monitor", since=4)) == {}
        _check_calibration(_get(base, "matrices", "cal/test", split="test"), test, [0])
        assert _served_alerts(_get(base, "multilabel", "ml/monitor")) == {1: [alert(2, "collapse")]}
        assert _get(base, "multilabel", "ml/monitor", since=1)["alerts"] == []
        old_answer = _get(base, "matrices", "old/monitor")
        assert "alerts" not in old_answer and all("calibration" not in e for e in old_answer["epochs"])
        assert [e["step"] for e in old_answer["epochs"]] == [0, 1]

        cal.write()  # epoch 11, its alert and calibration: the first of the tags epochs_011-020
        deadline = time.monotonic() + 60
        while _runs(base)[("cal/monitor", "validation")]["last_step"] != 10:
            assert time.monotonic() < deadline, "epoch 11 not served within 60 s"
            time.sleep(0.25)
        newest = _get(base, "matrices", "cal/monitor", since=9)
        _check_calibration(newest, cal, [10])
        assert _served_alerts(newest) == {10: SYNTHETIC_ALERTS[10]}
        _check_calibration(_get(base, "matrices", "cal/monitor"), cal, list(range(11)))
    for run in (cal, test, multi, old):
        run.close()


def test_the_new_writers_check_their_input(tmp_path):
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        with pytest.raises(ValueError, match="three of one shape"):
            summary.calibration_bins(np.ones(15), np.ones(15), np.ones(14), step=0)
        with pytest.raises(ValueError, match="three of one shape"):
            summary.calibration_bins(np.ones((3, 5)), np.ones((3, 5)), np.ones((3, 5)), step=0)
        with pytest.raises(ValueError, match="Not an alert"):
            summary.alerts([{"epoch": 1, "rule": "x", "event": "maybe", "message": "m"}], step=0)
        assert summary.calibration_bins(np.ones(15), np.full(15, 0.5), np.zeros(15), step=0)
        assert summary.alerts([alert(1, "x") | {"numbers": {"ece": np.float32(np.nan), "k": np.int64(3)}}], 0)
    meta = metadata.create_summary_metadata("calibration", "test", bins=15)
    assert metadata.parse_plugin_content(meta.plugin_data.content)["bins"] == 15


def _brute_force(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Per-bin counts, confidence sums and right answers, and the ECE, one image at a time."""
    count, conf, right = np.zeros(BINS), np.zeros(BINS), np.zeros(BINS)
    for p, label in zip(probs, labels, strict=True):
        guess = int(np.argmax(p))
        b = min(int(np.floor(float(p[guess]) * BINS)), BINS - 1)
        count[b] += 1
        conf[b] += float(p[guess])
        right[b] += guess == label
    filled = count > 0
    ece = float(np.sum(count[filled] / count.sum() * np.abs(right[filled] / count[filled]
                                                             - conf[filled] / count[filled])))
    return {"count": count, "confidence_sum": conf, "correct": right, "ece": ece}


def _ece(flat: list[float]) -> float:
    count, conf, right = np.reshape(flat, (3, -1))
    filled = count > 0
    return float(np.sum(count[filled] / count.sum() * np.abs(right[filled] / count[filled]
                                                             - conf[filled] / count[filled])))


def test_a_real_fit_serves_the_calibration_of_its_run_files_and_of_predict(tmp_path):
    x, y = tiny_data(600, seed=0)
    y = np.random.default_rng(10).permutation(y)  # nothing to learn: the not-learning alarm fires
    model = tiny_model()
    run_dir = tmp_path / "fit"
    suite = monitoring_callbacks(["cat", "dog", "bird"], str(run_dir), tensorboard=False,
                                 prediction_grid=False, mistakes=0, pr_curves=False)
    model.fit(x[:300], y[:300], validation_data=(x[300:], y[300:]), epochs=3, batch_size=32, callbacks=suite,
              verbose=0)
    close_suite(suite)
    expected_alerts = suite_alarms(suite).alerts
    assert expected_alerts, "the shuffled labels raised no alarm"
    brute = _brute_force(model.predict(x[300:], batch_size=32, verbose=0), y[300:])

    def ready(base):
        return _runs(base).get(("fit/monitor", "validation"), {}).get("last_step") == 2

    with tensorboard(tmp_path, tmp_path / "tb.log", ready) as base:
        assert _runs(base)[("fit/monitor", "validation")]["calibration"] is True
        answer = _get(base, "matrices", "fit/monitor")
    lines = calibration_lines.read_lines(str(run_dir))
    assert [e["step"] for e in answer["epochs"]] == [line["epoch"] for line in lines] == [0, 1, 2]
    for epoch, line in zip(answer["epochs"], lines, strict=True):
        served = np.reshape(epoch["calibration"], (3, BINS))
        np.testing.assert_array_equal(served[0], line["count"])
        np.testing.assert_allclose(served[1], line["confidence_sum"], rtol=1e-12)
        np.testing.assert_array_equal(served[2], line["correct"])
        assert _ece(epoch["calibration"]) == pytest.approx(line["ece"], abs=1e-12)
    last = np.reshape(answer["epochs"][-1]["calibration"], (3, BINS))
    np.testing.assert_array_equal(last[0], brute["count"])
    np.testing.assert_array_equal(last[2], brute["correct"])
    np.testing.assert_allclose(last[1], brute["confidence_sum"], rtol=1e-5, atol=1e-4)
    assert _ece(answer["epochs"][-1]["calibration"]) == pytest.approx(brute["ece"], abs=1e-5)
    by_step: dict[int, list[dict]] = {}
    for a in expected_alerts:
        by_step.setdefault(a["epoch"] - 1, []).append(a)
    assert _served_alerts(answer) == by_step
