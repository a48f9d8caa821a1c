"""Multi-label heads (C independent sigmoids or logits, multi-hot targets): the streamed per-label
counts, exact match, Hamming accuracy and missed x added co-occurrence equal scikit-learn's and a
brute force over `predict`; the tags and run files written; the `head` override; under
MirroredStrategy every image counted once; targets the head cannot read turn the suite off."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

from callbacks import close_suite, monitoring_callbacks
from monitor import report
from monitor.capture import EvaluationCapture
from monitor.heads import head_kind, is_binary_loss
from monitor.metrics import multilabel_averages, multilabel_per_class
from monitor.multilabel import MultiLabelCounts, counts_from_payload, multilabel_payload
from monitor.render import multilabel_titles
from monitor.runfiles import matrices, multilabel_counts, per_class_csv, record
from tests.helpers import accumulator, read_tags

LABELS = ["cat", "dog", "car", "tree"]
EPOCHS = 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def multi_hot_images(n=200, c=4, seed=0):
    """Images whose quadrant j is brighter when label j is set; multi-hot (n, c) float targets."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.4).astype("float32")
    y[0], y[1] = 1.0, 0.0  # a row with every label, a row with none
    x = rng.random((n, 8, 8, 3), dtype=np.float32) * 0.5
    for j in range(c):
        rows, cols = divmod(j, 2)
        x[:, 4 * rows:4 * rows + 4, 4 * cols:4 * cols + 4, 0] += 0.5 * y[:, j, None, None]
    return x, y


def sigmoid_model(c=4, logits=False, loss=None, activation="sigmoid"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(),
                              keras.layers.Dense(c, activation=None if logits else activation)])
    loss = loss or (keras.losses.BinaryCrossentropy(from_logits=True) if logits else "binary_crossentropy")
    model.compile(keras.optimizers.Adam(0.03), loss)  # fast enough to spread the scores in 2 epochs
    return model


def fit_suite(model, run_dir, x, y, split=140, **options):
    """Fit EPOCHS epochs with the suite; the monitor's warning messages."""
    suite = monitoring_callbacks(LABELS[: y.shape[-1]], str(run_dir), tensorboard=False, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x[:split], y[:split], validation_data=(x[split:], y[split:]), epochs=EPOCHS,
                  batch_size=32, verbose=0, callbacks=suite)
    close_suite(suite)
    return [str(w.message) for w in caught if "monitor" in str(w.message)]


def probabilities(model, x, logits: bool) -> np.ndarray:
    out = model.predict(x, batch_size=32, verbose=0)
    return keras.ops.convert_to_numpy(keras.ops.sigmoid(out)) if logits else out


def scalar(run_dir, tag: str) -> float:
    events = accumulator(os.path.join(str(run_dir), "monitor")).Tensors(tag)
    assert [e.step for e in events] == list(range(EPOCHS)), tag
    return float(tf.make_ndarray(events[-1].tensor_proto))


def assert_counts_match(written: dict, y_true: np.ndarray, predicted: np.ndarray) -> None:
    """A run file line (or payload) against sklearn and a numpy brute force."""
    mcm = multilabel_confusion_matrix(y_true, predicted)
    expected = {"tn": mcm[:, 0, 0], "fp": mcm[:, 0, 1], "fn": mcm[:, 1, 0], "tp": mcm[:, 1, 1]}
    assert {k: written[k] for k in expected} == {k: v.tolist() for k, v in expected.items()}
    assert written["count"] == len(y_true)
    assert written["exact"] / written["count"] == accuracy_score(y_true, predicted)
    missed = ((y_true == 1) & (predicted == 0)).astype(np.int64)
    added = ((y_true == 0) & (predicted == 1)).astype(np.int64)
    brute = np.array([[int(np.sum(missed[:, i] * added[:, j])) for j in range(y_true.shape[1])]
                      for i in range(y_true.shape[1])])
    np.testing.assert_array_equal(matrices.dense_matrix(written["cooccurrence"], y_true.shape[1]), brute)


@pytest.mark.parametrize("logits", [False, True], ids=["sigmoid", "logits"])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_counts_equal_sklearn_at_the_threshold(tmp_path, logits, threshold):
    x, y = multi_hot_images()
    model = sigmoid_model(logits=logits)
    assert fit_suite(model, tmp_path, x, y, threshold=threshold) == []  # the suite stays on
    y_val = y[140:].astype(np.int64)
    predicted = (probabilities(model, x[140:], logits) >= threshold).astype(np.int64)
    lines = multilabel_counts.read_lines(str(tmp_path))
    assert [line["epoch"] for line in lines] == list(range(EPOCHS))
    assert lines[-1]["threshold"] == threshold and lines[-1]["class_names"] == LABELS
    assert_counts_match(lines[-1], y_val, predicted)
    assert 0 < predicted.sum() < predicted.size  # the threshold decides something
    assert abs(scalar(tmp_path, "multilabel/exact_match") - accuracy_score(y_val, predicted)) < 1e-6
    assert abs(scalar(tmp_path, "multilabel/hamming_accuracy") - (1 - hamming_loss(y_val, predicted))) < 1e-6
    for average in ("micro", "macro", "weighted"):
        expected = f1_score(y_val, predicted, average=average, zero_division=0)
        assert abs(scalar(tmp_path, f"averages/f1_{average}") - expected) < 1e-6, average
    csv = per_class_csv.read(str(tmp_path))
    last = csv[csv["epoch"] == EPOCHS - 1]
    p, r, f, support = precision_recall_fscore_support(y_val, predicted, average=None, zero_division=0)
    np.testing.assert_allclose(last[["precision", "recall", "f1"]].to_numpy(), np.stack([p, r, f], 1),
                               atol=1e-5)
    assert last["support"].tolist() == support.tolist() == y_val.sum(0).tolist()


def test_the_tags_of_a_multi_label_run(tmp_path):
    x, y = multi_hot_images()
    assert fit_suite(sigmoid_model(), tmp_path, x, y) == []
    tags = read_tags(str(tmp_path))
    assert list(tags) == ["monitor"]
    block = "epochs_001-010"
    expected = {f"multilabel/counts/{block}", f"multilabel/cooccurrence/{block}", f"predictions/grid/{block}",
                f"text/per_class/{block}", "multilabel/exact_match", "multilabel/hamming_accuracy",
                *(f"per_class/{m}/{n}" for m in ("precision", "recall", "f1") for n in LABELS),
                *(f"averages/{m}_{k}" for m in ("precision", "recall", "f1")
                  for k in ("micro", "macro", "weighted")),
                *(f"pr_curves/{n}" for n in LABELS), f"training_monitor/multilabel/validation/{block}",
                "generalisation/loss_gap"}  # no accuracy metric compiled: no accuracy gap; no calibration
    assert set(tags["monitor"]) == expected
    assert all(steps == [0, 1] for steps in tags["monitor"].values()), tags["monitor"]
    assert sorted(f for f in os.listdir(tmp_path) if not os.path.isdir(tmp_path / f)) == [
        multilabel_counts.FILE, per_class_csv.FILE]  # no confusion-matrix file


def test_pr_curves_count_each_labels_positives_and_negatives(tmp_path):
    x, y = multi_hot_images()
    assert fit_suite(sigmoid_model(), tmp_path, x, y, per_class=False, prediction_grid=False) == []
    acc = accumulator(os.path.join(str(tmp_path), "monitor"))
    y_val = y[140:]
    for j, name in enumerate(LABELS):
        data = tf.make_ndarray(acc.Tensors(f"pr_curves/{name}")[-1].tensor_proto)  # rows tp, fp, tn, fn, ...
        assert data[0, 0] == y_val[:, j].sum() and data[1, 0] == len(y_val) - y_val[:, j].sum(), name


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from callbacks import close_suite, monitoring_callbacks
from tests.test_multilabel import LABELS, multi_hot_images
run_dir, out = sys.argv[1], sys.argv[2]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = multi_hot_images(330, seed=4)
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(4)])
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
suite = monitoring_callbacks(LABELS, run_dir, tensorboard=False, threshold=0.4)
model.fit(x[:220], y[:220], validation_data=(x[220:], y[220:]), epochs=2, batch_size=32,
          callbacks=suite, verbose=0)
close_suite(suite)
p = tf.sigmoid(model.predict(x[220:], batch_size=32, verbose=0)).numpy()
json.dump({"replicas": strategy.num_replicas_in_sync, "y_val": y[220:].astype(int).tolist(),
           "predicted": (p >= 0.4).astype(int).tolist()}, open(out, "w"))
"""


def test_logits_under_mirrored_strategy_count_every_image_once(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(run_dir), str(out)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    written = multilabel_counts.last(str(run_dir))
    assert written["epoch"] == 1 and written["count"] == 110
    assert_counts_match(written, np.array(result["y_val"]), np.array(result["predicted"]))


def test_head_single_label_reads_a_sigmoid_model_by_argmax(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 200)
    x = rng.random((200, 8, 8, 3), dtype=np.float32) * 0.5
    x[..., 0] += labels[:, None, None] / 3
    y = np.eye(3, dtype="float32")[labels]  # one-hot
    model = sigmoid_model(c=3)
    assert fit_suite(model, tmp_path, x, y, head="single_label") == []
    predicted = model.predict(x[140:], verbose=0).argmax(1)
    epoch, _, cm = matrices.last(str(tmp_path))
    assert epoch == EPOCHS - 1
    np.testing.assert_array_equal(cm, confusion_matrix(labels[140:], predicted, labels=range(3)))
    assert multilabel_counts.last(str(tmp_path)) is None
    assert "confusion_matrix/counts/epochs_001-010" in read_tags(str(tmp_path))["monitor"]


def test_head_multi_label_forces_multi_label(tmp_path):
    """A linear output under a mean-squared-error loss reads as single-label by itself;
    head="multi_label" with from_logits=True reads it as C independent logits."""
    x, y = multi_hot_images()
    model = sigmoid_model(logits=True, loss="mse")
    assert head_kind("auto", 4, "linear", is_binary_loss(model.loss)) == "single_label"
    suite_warnings = fit_suite(model, tmp_path, x, y, head="multi_label", from_logits=True)
    assert suite_warnings == []
    predicted = (probabilities(model, x[140:], logits=True) >= 0.5).astype(np.int64)
    assert_counts_match(multilabel_counts.last(str(tmp_path)), y[140:].astype(np.int64), predicted)
    assert matrices.last(str(tmp_path)) is None


@pytest.mark.parametrize("targets, message", [
    ("soft", "hold other values than 0 and 1"),
    ("sparse", "must be multi-hot (batch, 4)"),
])
def test_targets_the_head_cannot_read_turn_it_off_with_one_warning(tmp_path, targets, message):
    x, y = multi_hot_images(120)
    y = np.where(y > 0, 0.9, 0.1).astype("float32") if targets == "soft" else y.argmax(1)
    model = sigmoid_model(loss="mse" if targets == "soft" else "sparse_categorical_crossentropy")
    ours = fit_suite(model, tmp_path, x, y, split=80)
    assert len(ours) == 1 and "cannot read the targets" in ours[0] and message in ours[0], ours
    assert [f for f in os.listdir(tmp_path) if f.endswith((".jsonl", ".csv"))] == []


def test_cooccurrence_is_left_out_above_its_limit(monkeypatch):
    monkeypatch.setattr("monitor.capture.MULTILABEL_COOCCURRENCE_MAX", 3)
    x, y = multi_hot_images(64)
    model = sigmoid_model()
    capture = EvaluationCapture(4, sample_slots=4, mistakes=8)
    capture.attach(model)
    model.evaluate(x, y, batch_size=16, verbose=0)
    state = capture.read()
    capture.detach()
    predicted = (model.predict(x, verbose=0) >= 0.5).astype(np.int64)
    assert state.multi_label.cooccurrence is None
    assert multilabel_payload(state.multi_label)["cooccurrence"] is None
    np.testing.assert_array_equal(state.multi_label.tp, (predicted * y).sum(0))
    assert not state.confusion.any() and state.count == 64 and state.mistake_labels is None
    filled = state.sample_positions >= 0
    np.testing.assert_array_equal(state.sample_targets[filled], y[state.sample_positions[filled]])
    first = [int(np.flatnonzero(y[p])[0]) for p in state.sample_positions[filled]]
    assert state.sample_labels[filled].tolist() == first  # slots grouped by each row's first label


def test_payload_is_the_dashboard_contract_and_round_trips():
    m = MultiLabelCounts(np.array([3, 0]), np.array([1, 2]), np.array([0, 4]), np.array([6, 4]), count=10,
                         exact=5, cooccurrence=np.array([[0, 0], [2, 0]]), threshold=0.3)
    payload = multilabel_payload(m)
    assert json.loads(json.dumps(payload)) == payload == {
        "count": 10, "exact": 5, "tp": [3, 0], "fp": [1, 2], "fn": [0, 4], "tn": [6, 4],
        "cooccurrence": [[1, 0, 2]], "threshold": 0.3}
    back = counts_from_payload(payload, 2)
    assert back.count == 10 and back.cooccurrence.tolist() == [[0, 0], [2, 0]] and back.tn.tolist() == [6, 4]


def test_math_equals_sklearn_on_random_multi_hot_arrays():
    rng = np.random.default_rng(5)
    y_true, y_pred = (rng.random((2, 300, 6)) < [0.3, 0.5, 0.0, 0.2, 0.9, 0.4]).astype(int)
    y_pred[:, 3] = 0  # a label never predicted: precision undefined (0.0)
    mcm = multilabel_confusion_matrix(y_true, y_pred)
    tp, fp, fn = mcm[:, 1, 1], mcm[:, 0, 1], mcm[:, 1, 0]
    stats = multilabel_per_class(tp, fp, fn)
    expected = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    for key, values in zip(("precision", "recall", "f1", "support"), expected, strict=True):
        np.testing.assert_allclose(stats[key], values, err_msg=key)
    exact = int((y_true == y_pred).all(1).sum())
    avg = multilabel_averages(tp, fp, fn, 300, exact)
    for kind in ("micro", "macro", "weighted"):
        assert abs(avg[f"f1_{kind}"] - f1_score(y_true, y_pred, average=kind, zero_division=0)) < 1e-12
    assert abs(avg["hamming_accuracy"] - (1 - hamming_loss(y_true, y_pred))) < 1e-12
    assert avg["exact_match"] == accuracy_score(y_true, y_pred)


def test_head_kind_and_binary_losses():
    assert [head_kind("auto", u, a, b) for u, a, b in [
        (1, "sigmoid", True), (4, "sigmoid", False), (4, "linear", True), (4, "softmax", True),
        (4, "linear", False), (None, "sigmoid", False)]] == [
        "binary", "multi_label", "multi_label", "single_label", "single_label", "multi_label"]
    assert head_kind("single_label", 4, "sigmoid", True) == "single_label"
    losses = ("binary_crossentropy", keras.losses.BinaryCrossentropy(),
              keras.losses.BinaryFocalCrossentropy(), keras.losses.binary_crossentropy,
              "categorical_crossentropy", None)
    assert [is_binary_loss(v) for v in losses] == [True] * 4 + [False] * 2
    with pytest.raises(ValueError, match="head=multi"):
        monitoring_callbacks(LABELS, "unused", head="multi")


def test_a_head_that_does_not_fit_the_output_is_refused_when_fit_starts(tmp_path):
    x, y = multi_hot_images(90)
    suite = monitoring_callbacks(LABELS, str(tmp_path), tensorboard=False, head="binary")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sigmoid_model().fit(x[:60], y[:60], validation_data=(x[60:], y[60:]), epochs=1, verbose=0,
                            callbacks=suite)
    ours = [str(w.message) for w in caught if "monitor" in str(w.message)]
    assert len(ours) == 1 and "head='binary' does not fit the model's output of 4 unit(s)" in ours[0], ours


def test_grid_titles_name_the_true_and_the_predicted_sets():
    texts, right = multilabel_titles(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]]),
                                     np.array([[0.9, 0.2, 0.6], [0.1, 0.2, 0.3], [0.7, 0.4, 0.1]]), 0.5,
                                     ["cat", "dog", "car"])
    assert texts == ["true: cat, car\npred: cat 0.90, car 0.60", "true: -\npred: -",
                     "true: dog\npred: cat 0.70"]
    assert right == [True, True, False]


def test_report_of_a_multi_label_run_shows_its_table_and_no_matrix(tmp_path):
    run = str(tmp_path)
    record.write(run, {"status": "running", "flags": {"model": "x", "dataset": "y", "epochs": 2},
                       "history": {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}, "epochs_run": 2})
    m = MultiLabelCounts(np.array([3, 1]), np.array([1, 0]), np.array([0, 2]), np.array([6, 7]), count=10,
                         exact=7, cooccurrence=np.zeros((2, 2), np.int64), threshold=0.5)
    for epoch in range(2):
        multilabel_counts.append(run, epoch, ["cat", "dog"], multilabel_payload(m))
    page = open(report.build_report(run), encoding="utf-8").read()
    assert 'id="multi-label"' in page and "Exact match 0.7000" in page and "Hamming accuracy 0.8500" in page
    assert "<td>dog</td><td>1.0000</td><td>0.3333</td>" in page
    assert 'id="confusion"' not in page and not os.path.exists(os.path.join(run, "confusion_validation.png"))
    multilabel_counts.truncate(run, 1)
    assert [line["epoch"] for line in multilabel_counts.read_lines(run)] == [0]
    plain = pd.read_json(multilabel_counts.path(run), lines=True)  # readable without this code
    assert plain["exact"].tolist() == [7] and plain["tp"].tolist() == [[3, 1]]


def test_the_dashboard_gets_each_epochs_counts_as_the_run_file_has_them(tmp_path):
    x, y = multi_hot_images()
    assert fit_suite(sigmoid_model(), tmp_path, x, y) == []
    acc = accumulator(os.path.join(str(tmp_path), "monitor"))
    events = acc.Tensors("training_monitor/multilabel/validation/epochs_001-010")
    written = [json.loads(tf.make_ndarray(e.tensor_proto).item()) for e in events]
    lines = multilabel_counts.read_lines(str(tmp_path))
    assert [e.step for e in events] == [line["epoch"] for line in lines] == [0, 1]
    keys = ("count", "exact", "tp", "fp", "fn", "tn", "cooccurrence", "threshold")
    assert [{k: w[k] for k in keys} for w in written] == [{k: line[k] for k in keys} for line in lines]
