"""Classifier heads other than C softmax/logit units: binary one-unit heads, multi-hot targets fed to
a softmax head (refused with one warning, never argmax numbers), and models with their own test_step.
Multi-label heads: tests/test_multilabel.py."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from callbacks import close_suite, monitoring_callbacks
from monitor.runfiles.matrices import FILE as MATRICES_FILE
from tests.helpers import read_tags, tiny_data, tiny_model

BINARY = ["cat", "dog"]  # negative first: class 0 = cat, class 1 = dog (p = p(dog))
EPOCHS = 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



def fit_noting_warnings(model, suite, *args, **kwargs):
    """`model.fit(*args, callbacks=suite, verbose=0, epochs=EPOCHS, **kwargs)`, the suite closed;
    (history, the monitor's warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(*args, epochs=EPOCHS, verbose=0, callbacks=suite, **kwargs)
    close_suite(suite)
    return history, [str(w.message) for w in caught if "monitor" in str(w.message)]

def binary_model(logits: bool):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(1, activation=None if logits else "sigmoid"),
    ])
    loss = keras.losses.BinaryCrossentropy(from_logits=True) if logits else "binary_crossentropy"
    model.compile("adam", loss, metrics=["accuracy"])
    return model


def last_counts(run_dir) -> np.ndarray:
    with open(f"{run_dir}/{MATRICES_FILE}") as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == list(range(EPOCHS))
    return np.array(records[-1]["counts"])


@pytest.mark.parametrize("logits", [False, True], ids=["sigmoid", "logits"])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_one_unit_matrix_equals_sklearn_at_the_threshold(tmp_path, logits, threshold):
    x, y = tiny_data(200, classes=2, seed=3)
    labels = y.astype("float32")[:, None] if logits else y  # (N, 1) floats and (N,) ints
    model = binary_model(logits)
    suite = monitoring_callbacks(BINARY, str(tmp_path), tensorboard=False, threshold=threshold,
                                 epochs_per_tag=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all: the suite stays on
        model.fit(x[:140], labels[:140], validation_data=(x[140:], labels[140:]), epochs=EPOCHS,
                  batch_size=32, verbose=0, callbacks=suite)
    close_suite(suite)
    out = model.predict(x[140:], verbose=0).reshape(-1)
    p = 1.0 / (1.0 + np.exp(-out)) if logits else out
    expected = confusion_matrix(y[140:], (p >= threshold).astype(int), labels=[0, 1])
    np.testing.assert_array_equal(last_counts(tmp_path), expected)
    assert expected.sum() == 60
    tags = read_tags(str(tmp_path))["monitor"]
    for tag in ("confusion_matrix/counts", "predictions/grid", "mistakes/most_confident",
                "per_class/recall/cat", "per_class/f1/dog", "averages/accuracy", "pr_curves/cat",
                "pr_curves/dog", "training_monitor/confusion/validation"):
        assert tags[tag] == [0, 1], tag


def test_threshold_is_checked():
    with pytest.raises(ValueError, match="threshold=1.5"):
        monitoring_callbacks(BINARY, "unused", threshold=1.5)


def multi_hot_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3), dtype=np.float32)
    y = (rng.random((n, 4)) < 0.4).astype("float32")
    y[0] = [1, 1, 0, 0]  # at least one row with two labels
    return x, y


def test_multi_hot_targets_with_a_softmax_head_turn_the_suite_off_with_one_warning(tmp_path):
    """A softmax output (single-label, even under a binary cross-entropy loss) fed multi-hot
    targets is caught by the targets themselves at the first validation pass: nothing written."""
    x, y = multi_hot_data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "binary_crossentropy")
    suite = monitoring_callbacks(["a", "b", "c", "d"], str(tmp_path), tensorboard=False)
    history, ours = fit_noting_warnings(model, suite, x[:80], y[:80], validation_data=(x[80:], y[80:]))
    assert len(ours) == 1, ours
    assert "multi-label targets with a single-label head are not monitored" in ours[0]
    assert 'head="multi_label"' in ours[0] and "argmax" not in ours[0].split(":")[0]
    assert len(history.history["loss"]) == EPOCHS  # fit completes
    assert [f for f in os.listdir(tmp_path) if f.endswith((".jsonl", ".csv"))] == []


class GuideModel(keras.Model):
    """The test_step of Keras' guide "Customizing what happens in fit()": no compute_metrics."""

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


class BlindModel(keras.Model):
    """A test_step that hands its predictions to neither compute_metrics nor compute_loss."""

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        return {"loss": keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, y_pred))}


def subclassed(cls):
    base = tiny_model()
    return cls(base.inputs, base.outputs)


def test_a_custom_test_step_of_the_guide_is_captured_exactly(tmp_path):
    x, y = tiny_data(200, seed=2)
    model = subclassed(GuideModel)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    suite = monitoring_callbacks(["cat", "dog", "bird"], str(tmp_path), tensorboard=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=EPOCHS, batch_size=32,
                  verbose=0, callbacks=suite)
    close_suite(suite)
    pred = model.predict(x[140:], verbose=0).argmax(1)
    np.testing.assert_array_equal(last_counts(tmp_path), confusion_matrix(y[140:], pred, labels=range(3)))
    assert read_tags(str(tmp_path))["monitor"]["predictions/grid/epochs_001-010"] == [0, 1]


def test_a_custom_test_step_the_suite_cannot_see_says_so(tmp_path):
    x, y = tiny_data(120, seed=2)
    model = subclassed(BlindModel)
    model.compile("adam", "sparse_categorical_crossentropy")
    suite = monitoring_callbacks(["cat", "dog", "bird"], str(tmp_path), tensorboard=False)
    history, ours = fit_noting_warnings(model, suite, x[:80], y[:80], validation_data=(x[80:], y[80:]))
    assert len(ours) == 1, ours
    assert "own test_step" in ours[0] and "Keras did run the validation pass" in ours[0]
    assert "no validation pass" not in ours[0]
    assert len(history.history["loss"]) == EPOCHS


MIRRORED_BINARY = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from callbacks import close_suite, monitoring_callbacks
from tests.helpers import tiny_data
run_dir, out = sys.argv[1], sys.argv[2]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = tiny_data(330, classes=2, seed=4)
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
suite = monitoring_callbacks(["cat", "dog"], run_dir, tensorboard=False, threshold=0.3)
model.fit(x[:220], y[:220], validation_data=(x[220:], y[220:]), epochs=2, batch_size=32,
          callbacks=suite, verbose=0)
close_suite(suite)
p = tf.sigmoid(model.predict(x[220:], batch_size=32, verbose=0)).numpy().reshape(-1)
json.dump({"replicas": strategy.num_replicas_in_sync, "y_val": y[220:].tolist(),
           "predicted": (p >= 0.3).astype(int).tolist()}, open(out, "w"))
"""


def test_binary_logits_under_mirrored_strategy_count_every_image_once(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", MIRRORED_BINARY, str(run_dir), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    expected = confusion_matrix(result["y_val"], result["predicted"], labels=[0, 1])
    np.testing.assert_array_equal(last_counts(run_dir), expected)
    assert expected.sum() == 110


def test_several_outputs_turn_the_suite_off_with_one_warning_naming_them(tmp_path):
    x, y = tiny_data(90)
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax", name="classes")(features),
                                 keras.layers.Dense(1, name="aux")(features)])
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    suite = monitoring_callbacks(["cat", "dog", "bird"], str(tmp_path), tensorboard=False)
    history, ours = fit_noting_warnings(model, suite, x, [y, y.astype("float32")], validation_split=0.3)
    assert len(ours) == 1, ours
    assert "2 outputs (classes, aux)" in ours[0]
    assert "pass output= (one of: classes, aux" in ours[0]
    assert len(history.history["loss"]) == EPOCHS


MIRRORED_HEADS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from callbacks import close_suite, monitoring_callbacks
from tests.helpers import tiny_data, tiny_model
from tests.test_heads import GuideModel
from tests.test_outputs import two_heads
kind, run_dir, out = sys.argv[1:4]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = tiny_data(330, seed=6)
with strategy.scope():
    if kind == "guide":
        base = tiny_model()
        model = GuideModel(base.inputs, base.outputs)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        targets, output = y, None
    else:
        model = two_heads(False)  # aux first: the classes head is output 1
        targets, output = [{"classes": y, "aux": y % 2}[n] for n in model.output_names], "classes"
suite = monitoring_callbacks(["cat", "dog", "bird"], run_dir, tensorboard=False, output=output)
split = lambda t, s: [part[s] for part in t] if isinstance(t, list) else t[s]
model.fit(x[:220], split(targets, slice(0, 220)), validation_data=(x[220:], split(targets, slice(220, None))),
          epochs=2, batch_size=32, callbacks=suite, verbose=0)
close_suite(suite)
p = model.predict(x[220:], batch_size=32, verbose=0)
p = p[model.output_names.index("classes")] if isinstance(p, list) else p
json.dump({"replicas": strategy.num_replicas_in_sync, "y_val": y[220:].tolist(),
           "predicted": p.argmax(1).tolist()}, open(out, "w"))
"""


@pytest.mark.parametrize("kind", ["guide", "two-outputs"])
def test_custom_steps_and_chosen_outputs_under_mirrored_strategy_count_every_image_once(tmp_path, kind):
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", MIRRORED_HEADS, kind, str(run_dir), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    expected = confusion_matrix(result["y_val"], result["predicted"], labels=[0, 1, 2])
    np.testing.assert_array_equal(last_counts(run_dir), expected)
    assert expected.sum() == 110
