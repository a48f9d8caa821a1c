"""The suite under tf.distribute, only the chief writing, and failures that never reach `fit`."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from callbacks import close_suite, monitoring_callbacks
from monitor.runfiles.matrices import FILE as MATRICES_FILE
from monitor.runfiles.matrices import decode as matrix_from_record
from tests.helpers import NAMES, read_tags, tiny_data, tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from callbacks import close_suite, monitoring_callbacks
from tests.helpers import NAMES, tiny_data
run_dir, out = sys.argv[1], sys.argv[2]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = tiny_data(330, seed=4)
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
suite = monitoring_callbacks(NAMES, run_dir, grid_size=6, probability_images=2)
# 110 validation images in batches of 32: the last global batch splits unevenly over the replicas
model.fit(x[:220], y[:220], validation_data=(x[220:], y[220:]), epochs=2, batch_size=32,
          callbacks=suite, verbose=0)
close_suite(suite)
pred = model.predict(x[220:], batch_size=32, verbose=0).argmax(1)
json.dump({"replicas": strategy.num_replicas_in_sync, "y_val": y[220:].tolist(),
           "predicted": pred.tolist()}, open(out, "w"))
"""


def _python(script, *args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, **(env or {})})


def test_mirrored_strategy_over_two_devices_counts_every_image_once(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    proc = _python(MIRRORED_SCRIPT, str(run_dir), str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    with open(run_dir / MATRICES_FILE) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [0, 1]
    last = matrix_from_record(records[-1])
    assert last.sum() == len(result["y_val"]) == 110
    expected = np.zeros((3, 3), np.int64)
    np.add.at(expected, (result["y_val"], result["predicted"]), 1)
    np.testing.assert_array_equal(last, expected)
    tags = read_tags(str(run_dir))["monitor"]
    for kind in ("confusion_matrix/normalized", "confusion_matrix/counts", "predictions/grid",
                 "predictions/probabilities"):
        assert tags[f"{kind}/epochs_001-010"] == [0, 1], kind
    assert tags["per_class/recall/cat"] == [0, 1]
    assert "RuntimeWarning" not in proc.stderr, proc.stderr[-3000:]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_multiworker_train_py_processes_write_one_run(tmp_path, synthetic_data_dir):
    logdir = tmp_path / "logs"
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        env = {**os.environ, "PYTHONPATH": ROOT, "TMPDIR": str(scratch), "CI": "1",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "train.py", "--model", "simple", "--dataset", "mnist", "--limit", "300",
             "--epochs", "2", "--strategy", "multiworker", "--run-name", "mw", "--logdir", str(logdir),
             "--data-dir", str(synthetic_data_dir)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=420) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, (out + err)[-3000:]
    assert os.listdir(logdir) == ["mw"]  # one run directory, the chief's
    run = logdir / "mw"
    for sub in ("train", "validation", "monitor", "test"):
        events = [f for f in os.listdir(run / sub) if f.startswith("events.")]
        assert len(events) == 1, (sub, events)  # one writer: no second worker's file
    tags = read_tags(str(run))
    assert tags["train"]["epoch_loss"] == [0, 1] and tags["validation"]["epoch_loss"] == [0, 1]
    for tag, steps in tags["monitor"].items():
        if tag != "run/flags":
            assert steps == [0, 1], tag
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["replicas"] == 2
    with open(run / MATRICES_FILE) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [0, 1]
    assert all(matrix_from_record(r).sum() == metrics["validation_size"] for r in records)
    assert os.listdir(tmp_path / "tmp1") == []  # worker 1 left nothing behind
    assert "not the chief" in outputs[1][0]


def test_a_failing_renderer_warns_once_and_training_goes_on(tmp_path, monkeypatch):
    from monitor.render import ConfusionHeatmapRenderer

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ConfusionHeatmapRenderer, "render", disk_full)
    x, y = tiny_data(120)
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False)
    # Drawn in this process, where the patch is (tests/test_drawing.py fails one in the drawing process).
    next(c.writers for c in suite if hasattr(c, "writers")).drawing.enabled = False
    with pytest.warns(RuntimeWarning) as caught:
        history = tiny_model().fit(x, y, validation_split=0.3, epochs=3, verbose=0, callbacks=suite)
    close_suite(suite)  # and closing does not raise either
    assert len(history.history["loss"]) == 3
    monitor_warnings = [w for w in caught if "monitor:" in str(w.message)]
    assert len(monitor_warnings) == 1
    assert "No space left on device" in str(monitor_warnings[0].message)
    assert "writes nothing more" in str(monitor_warnings[0].message)
    tags = read_tags(str(tmp_path)).get("monitor", {})
    assert all(max(steps) == 0 for steps in tags.values())  # quiet after the failing epoch


def test_an_output_the_suite_cannot_read_warns_and_fit_completes(tmp_path):
    x, y = tiny_data(90)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Reshape((1, 3))(keras.layers.Dense(3, activation="softmax")(
        keras.layers.Flatten()(inputs)))  # (batch, 1, 3): not (batch, classes)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False)
    with pytest.warns(UserWarning, match=r"is not \(batch, 3\); nothing captured") as caught:
        history = model.fit(x, y[:, None], validation_split=0.3, epochs=2, verbose=0, callbacks=suite)
    close_suite(suite)
    assert len(history.history["loss"]) == 2
    assert len([w for w in caught if "monitor:" in str(w.message)]) == 1  # one warning, not one per epoch
    assert not (tmp_path / "monitor").exists()


def test_a_user_script_under_mirrored_strategy_on_one_device(tmp_path):
    """The default single-device MirroredStrategy path in-process: same numbers as predict."""
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    x, y = tiny_data(150, seed=2)
    with strategy.scope():
        model = tiny_model()
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False)
    model.fit(x[:100], y[:100], validation_data=(x[100:], y[100:]), epochs=1, verbose=0, callbacks=suite)
    close_suite(suite)
    with open(tmp_path / MATRICES_FILE) as f:
        counts = matrix_from_record(json.loads(f.readline()))
    pred = model.predict(x[100:], verbose=0).argmax(1)
    expected = np.zeros((3, 3), np.int64)
    np.add.at(expected, (y[100:], pred), 1)
    np.testing.assert_array_equal(counts, expected)


def test_multiworker_flags_are_checked_before_training(tmp_path):
    script = textwrap.dedent("""
        import sys
        from train import main
        sys.exit(main(sys.argv[1:]))
    """)
    base = ["--model", "simple", "--dataset", "mnist", "--strategy", "multiworker", "--logdir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-c", script, *base, "--run-name", "x"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 2 and "needs TF_CONFIG" in proc.stderr
    env["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker",
                                                                                    "index": 0}})
    proc = subprocess.run([sys.executable, "-c", script, *base], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 2 and "needs --run-name" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []
