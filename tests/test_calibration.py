"""Calibration from Keras' own validation pass: the streamed reliability statistics, ECE and MCE
against a brute-force computation over `model.predict` written here, independently of
monitor.calibration (softmax and logits, XLA on and off, 10 and 1,000 classes, binary heads,
MirroredStrategy over two logical CPUs), and what the suite writes from them."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from callbacks import close_suite, monitoring_callbacks
from monitor.calibration import reliability
from monitor.capture import EvaluationCapture
from tests.helpers import read_tags, tiny_data, tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINS = 15


def brute_force(probs: np.ndarray, labels: np.ndarray, predicted: np.ndarray | None = None) -> dict:
    """Per-bin counts, mean confidence and accuracy, ECE and MCE, one image at a time."""
    predicted = probs.argmax(1) if predicted is None else predicted
    count, conf, right = np.zeros(BINS), np.zeros(BINS), np.zeros(BINS)
    for p, label, guess in zip(probs, labels, predicted, strict=True):
        confidence = float(p[guess])
        b = min(int(confidence * BINS), BINS - 1)
        count[b] += 1
        conf[b] += confidence
        right[b] += guess == label
    n = count.sum()
    ece, mce = 0.0, 0.0
    for b in range(BINS):
        if count[b]:
            gap = abs(right[b] / count[b] - conf[b] / count[b])
            ece += count[b] / n * gap
            mce = max(mce, gap)
    return {"count": count, "confidence_sum": conf, "correct": right, "ece": ece, "mce": mce,
            "over_confidence": conf.sum() / n - right.sum() / n}


def captured(model, x, y, classes: int, **kwargs) -> dict:
    capture = EvaluationCapture(classes, **kwargs)
    capture.attach(model)
    model.evaluate(x, y, batch_size=32, verbose=0)
    state = capture.read()
    capture.detach()
    return state.calibration


def assert_same(streamed: dict, expected: dict) -> None:
    np.testing.assert_array_equal(streamed["count"], expected["count"])
    np.testing.assert_array_equal(streamed["correct"], expected["correct"])
    np.testing.assert_allclose(streamed["confidence_sum"], expected["confidence_sum"], rtol=1e-5, atol=1e-4)
    stats = reliability(**streamed)
    for key in ("ece", "mce", "over_confidence"):
        assert stats[key] == pytest.approx(expected[key], abs=1e-5), key


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("classes", [10, 1000])
@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("jit", [False, True])
def test_streamed_statistics_equal_brute_force_over_predict(classes, logits, jit):
    x, y = tiny_data(400, classes=classes, seed=classes)
    model = tiny_model(classes=classes, logits=logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=logits), jit_compile=jit)
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    if classes > 10:  # sharper outputs, so that 1,000 classes' confidences spread over several bins
        out = model.get_layer("out")
        out.set_weights([w * 40 for w in out.get_weights()])
    outputs = model.predict(x, batch_size=32, verbose=0)
    probs = softmax(outputs) if logits else outputs
    expected = brute_force(probs, y)
    assert (expected["count"] > 0).sum() >= 2  # the test sees several bins, not one
    assert_same(captured(model, x, y, classes), expected)


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_a_binary_head_is_calibrated_on_the_class_it_predicts(threshold):
    x, y = tiny_data(300, classes=2, seed=7)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    p = model.predict(x, batch_size=32, verbose=0)[:, 0]
    probs = np.stack([1 - p, p], axis=1)
    expected = brute_force(probs, y, (p >= threshold).astype(int))
    assert_same(captured(model, x, y, 2, threshold=threshold), expected)


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from monitor.capture import EvaluationCapture
from tests.helpers import tiny_data, tiny_model
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = tiny_data(330, classes=10, seed=3)
with strategy.scope():
    model = tiny_model(classes=10, logits=True)
    capture = EvaluationCapture(10)
    capture.attach(model)
model.fit(x, y, epochs=2, batch_size=64, verbose=0)
capture.reset()
model.evaluate(x, y, batch_size=32, verbose=0)
cal = capture.read().calibration
json.dump({"replicas": strategy.num_replicas_in_sync, "outputs": model.predict(x, verbose=0).tolist(),
           "y": y.tolist(), **{k: v.tolist() for k, v in cal.items()}}, open(sys.argv[1], "w"))
"""


def test_under_mirrored_strategy_every_image_is_binned_once(tmp_path):
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(out)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["replicas"] == 2
    expected = brute_force(softmax(np.array(r["outputs"])), np.array(r["y"]))
    assert sum(r["count"]) == 330
    assert_same({k: np.array(r[k]) for k in ("count", "confidence_sum", "correct")}, expected)


def test_the_suite_writes_calibration_every_epoch_and_can_be_turned_off(tmp_path):
    x, y = tiny_data(200, seed=5)
    for name, on in (("on", True), ("off", False)):
        model = tiny_model()
        suite = monitoring_callbacks(["cat", "dog", "bird"], str(tmp_path / name), tensorboard=False,
                                     calibration=on)
        model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=2, verbose=0, callbacks=suite)
        close_suite(suite)
        tags = read_tags(str(tmp_path / name))["monitor"]
        written = {t for t in tags if t.startswith("calibration/")}
        if on:
            assert written == {"calibration/ece", "calibration/mce", "calibration/over_confidence",
                               "calibration/reliability/epochs_001-010"}
            assert all(tags[t] == [0, 1] for t in written)
            calibration = next(c for c in suite if type(c).__name__ == "CalibrationCallback")
            probs = model.predict(x[140:], verbose=0)
            assert calibration.ece[1] == pytest.approx(brute_force(probs, y[140:])["ece"], abs=1e-5)
        else:
            assert written == set()
