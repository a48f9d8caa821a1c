"""The monitoring suite inside a real `fit`: tags, images, numbers, and the model left clean."""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from callbacks import close_suite, monitoring_callbacks
from monitor.render import png_size
from monitor.runfiles.matrices import FILE as MATRICES_FILE
from tests.helpers import NAMES, accumulator, read_tags, tiny_data, tiny_model

EPOCHS = 2
BLOCK = "epochs_001-010"


def expected_monitor_tags(names=NAMES):
    tags = {f"{kind}/{BLOCK}" for kind in (
        "confusion_matrix/normalized", "confusion_matrix/counts", "text/confused_pairs",
        "text/per_class", "predictions/grid", "predictions/probabilities", "mistakes/most_confident",
        "training_monitor/confusion/validation", "training_monitor/mistakes/validation",
        "training_monitor/calibration/validation", "explanations/mistakes", "explanations/grid",
        "training_monitor/explanations/validation")}
    tags |= {f"per_class/{m}/{n}" for m in ("precision", "recall", "f1") for n in names}
    tags |= {f"averages/{m}" for m in (
        "accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted",
        "recall_weighted", "f1_weighted", "balanced_accuracy")}
    tags |= {f"pr_curves/{n}" for n in names}
    tags |= {"generalisation/loss_gap", "generalisation/accuracy_gap"}  # the alarms' gap scalars
    tags |= {"calibration/ece", "calibration/mce", "calibration/over_confidence",
             f"calibration/reliability/{BLOCK}"}
    return tags


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    """A tiny model fitted for 2 epochs with `validation_split`, the suite attached."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "split")
    x, y = tiny_data(240)
    model = tiny_model()
    suite = monitoring_callbacks(NAMES, run_dir)
    history = model.fit(x, y, validation_split=0.3, epochs=EPOCHS, batch_size=32,
                        callbacks=suite, verbose=0)
    close_suite(suite)
    split_at = math.ceil(len(x) * 0.7)  # Keras takes the last 30%, unshuffled
    return dict(run_dir=run_dir, model=model, history=history, x_val=x[split_at:], y_val=y[split_at:])


def test_every_suite_tag_is_written_for_every_epoch(split_run):
    tags = read_tags(split_run["run_dir"])
    assert set(tags["monitor"]) == expected_monitor_tags()
    for tag, steps in tags["monitor"].items():
        assert steps == list(range(EPOCHS)), tag
    # Keras' own TensorBoard callback: epoch scalars and a histogram per weight, same steps
    for sub in ("train", "validation"):
        assert tags[sub]["epoch_loss"] == [0, 1] and tags[sub]["epoch_accuracy"] == [0, 1]
    weights = {w.path for w in split_run["model"].weights}
    assert {f"{p}/histogram" for p in weights} <= set(tags["train"])


def test_images_are_pngs_of_the_stated_size(split_run):
    acc = accumulator(os.path.join(split_run["run_dir"], "monitor"))
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "images":
            continue
        for event in acc.Tensors(tag):
            width, height, png = tf.make_ndarray(event.tensor_proto)
            decoded = tf.io.decode_png(png)
            assert decoded.shape[:2] == (int(height), int(width))
            assert png_size(png) == (int(width), int(height))
            assert int(width) > 300 and int(height) > 300


def test_streamed_matrix_equals_predict_and_sklearn(split_run):
    run_dir, model = split_run["run_dir"], split_run["model"]
    with open(os.path.join(run_dir, MATRICES_FILE)) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == list(range(EPOCHS))
    last = np.array(records[-1]["counts"])
    pred = model.predict(split_run["x_val"], batch_size=32, verbose=0).argmax(1)
    expected = confusion_matrix(split_run["y_val"], pred, labels=range(3))
    np.testing.assert_array_equal(last, expected)
    # the per-class scalars written for the last epoch equal scikit-learn's
    acc = accumulator(os.path.join(run_dir, "monitor"))
    p, r, f1, _ = precision_recall_fscore_support(split_run["y_val"], pred, labels=range(3), zero_division=0)
    for metric, values in (("precision", p), ("recall", r), ("f1", f1)):
        for name, value in zip(NAMES, values, strict=True):
            event = acc.Tensors(f"per_class/{metric}/{name}")[-1]
            assert event.step == EPOCHS - 1
            assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(value, abs=1e-6)


def test_suite_stays_out_of_keras_logs_and_saved_model(split_run, tmp_path):
    assert set(split_run["history"].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    model = split_run["model"]
    assert "test_step" not in model.__dict__  # restored after fit
    path = tmp_path / "model.keras"
    model.save(path)
    code = "import sys, keras; keras.saving.load_model(sys.argv[1], safe_mode=True); print('ok')"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_validation_data_logits_and_one_hot(tmp_path):
    x, y = tiny_data(200, seed=1)
    model = tiny_model(logits=True, one_hot=True)
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, grid_size=6,
                                 probability_images=2, epochs_per_tag=0)
    yh = keras.utils.to_categorical(y, 3)
    model.fit(x[:150], yh[:150], validation_data=(x[150:], yh[150:]), epochs=EPOCHS, verbose=0,
              callbacks=suite)
    close_suite(suite)
    tags = read_tags(str(tmp_path))
    assert set(tags) == {"monitor"}  # tensorboard=False: no train/ or validation/
    assert tags["monitor"]["predictions/probabilities"] == [0, 1]
    assert tags["monitor"]["confusion_matrix/normalized"] == [0, 1]
    probs = tf.nn.softmax(model.predict(x[150:], verbose=0)).numpy()
    with open(tmp_path / MATRICES_FILE) as f:
        last = np.array(json.loads(f.readlines()[-1])["counts"])
    np.testing.assert_array_equal(last, confusion_matrix(y[150:], probs.argmax(1), labels=range(3)))


def test_epochs_without_validation_write_nothing_and_warn_once(tmp_path):
    x, y = tiny_data(120)
    model = tiny_model()
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False)
    with pytest.warns(UserWarning, match="no validation pass") as caught:
        model.fit(x, y, validation_split=0.3, validation_freq=2, epochs=4, verbose=0, callbacks=suite)
    close_suite(suite)
    assert len([w for w in caught if "no validation pass" in str(w.message)]) == 1
    tags = read_tags(str(tmp_path))["monitor"]
    assert tags[f"confusion_matrix/normalized/{BLOCK}"] == [1, 3]
    assert tags["per_class/recall/cat"] == [1, 3]


def test_every_n_epochs_and_parts_off(tmp_path):
    x, y = tiny_data(120)
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, every_n_epochs=2,
                                 prediction_grid=False, pr_curves=False, per_class=False, mistakes=0,
                                 alarms=False, calibration=False)
    tiny_model().fit(x, y, validation_split=0.3, epochs=3, verbose=0, callbacks=suite)
    close_suite(suite)
    tags = read_tags(str(tmp_path))["monitor"]
    assert set(tags) == {f"confusion_matrix/normalized/{BLOCK}", f"confusion_matrix/counts/{BLOCK}",
                         f"text/confused_pairs/{BLOCK}", f"training_monitor/confusion/validation/{BLOCK}"}
    assert all(steps == [0, 2] for steps in tags.values())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"every_n_epochs": 0}, "every_n_epochs=0"),
    ({"grid_size": -1}, "grid_size=-1"),
    ({"epochs_per_tag": -2}, "epochs_per_tag=-2"),
    ({"histogram_freq": -1}, "histogram_freq=-1"),
    ({"confused_pairs": -1}, "confused_pairs=-1"),  # the suite names the option the caller gave
    ({"grid_columns": 0}, "grid_columns=0"),
])
def test_invalid_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        monitoring_callbacks(NAMES, str(tmp_path), **kwargs)


def test_a_callback_built_alone_names_its_own_argument(tmp_path):
    from callbacks import ConfusionMatrixCallback, ValidationCaptureCallback
    from monitor.writers import SummaryWriters

    capture = ValidationCaptureCallback(len(NAMES))
    with pytest.raises(ValueError, match="top_pairs=-1"):
        ConfusionMatrixCallback(capture, SummaryWriters(str(tmp_path)), NAMES, top_pairs=-1)


def test_class_names_that_do_not_match_the_model_turn_the_suite_off_not_fit(tmp_path):
    x, y = tiny_data(60)
    suite = monitoring_callbacks(NAMES[:2], str(tmp_path / "three"), tensorboard=False)
    with pytest.warns(RuntimeWarning, match="model outputs 3 classes but the monitor has 2 class names"):
        history = tiny_model().fit(x, y, validation_split=0.3, epochs=2, verbose=0, callbacks=suite)
    close_suite(suite)
    assert len(history.history["loss"]) == 2  # training went on
    assert not (tmp_path / "three").exists()  # and the suite wrote nothing
    # a one-unit (binary) head is monitored with 2 class names (tests/test_heads.py), not with 3
    suite = monitoring_callbacks(NAMES, str(tmp_path / "binary"), tensorboard=False)
    binary = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(1, activation="sigmoid")])
    binary.compile("adam", "binary_crossentropy")
    with pytest.warns(RuntimeWarning, match=r"1 output unit .* Dense\(3\)"):
        binary.fit(x, (y > 0).astype("float32"), validation_split=0.3, epochs=1, verbose=0, callbacks=suite)
    close_suite(suite)
    assert not (tmp_path / "binary").exists()


def test_interrupted_fit_still_has_every_finished_epoch(tmp_path):
    """Ctrl-C (KeyboardInterrupt) in epoch 4, no close(): exit still drains the image queue."""
    script = textwrap.dedent(f"""
        import sys, keras
        sys.path[:0] = [{os.getcwd()!r}]
        from callbacks import close_suite, monitoring_callbacks
        from tests.helpers import NAMES, tiny_data, tiny_model
        class Stop(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 3:
                    raise KeyboardInterrupt
        x, y = tiny_data(120)
        suite = monitoring_callbacks(NAMES, {str(tmp_path)!r}, tensorboard=False, picture_budget=0)
        tiny_model().fit(x, y, validation_split=0.3, epochs=10, verbose=0, callbacks=[*suite, Stop()])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "KeyboardInterrupt" in out.stderr
    tags = read_tags(str(tmp_path))["monitor"]
    for kind in ("confusion_matrix/normalized", "predictions/grid", "predictions/probabilities"):
        assert tags[f"{kind}/{BLOCK}"] == [0, 1, 2], kind


def test_early_stopping_leaves_every_epoch_in_the_events_when_fit_returns(tmp_path):
    """EarlyStopping ends fit after epoch 2 of 10; nothing is closed by hand before reading."""
    x, y = tiny_data(120)
    # picture_budget=0: every epoch's images (the budget cannot know that epoch 2 is the last)
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False, picture_budget=0)
    # min_delta this large: epoch 1 is the best, epoch 2 is no improvement, patience 1 stops.
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=100.0)
    history = tiny_model().fit(x, y, validation_split=0.3, epochs=10, verbose=0, callbacks=[*suite, stop])
    assert len(history.history["loss"]) == 2 and stop.stopped_epoch == 1
    assert read_tags(str(tmp_path))["monitor"] == {tag: [0, 1] for tag in expected_monitor_tags()}


def test_no_figures_or_memory_growth_across_epochs(tmp_path):
    import matplotlib._pylab_helpers as helpers

    x, y = tiny_data(120)
    suite = monitoring_callbacks(NAMES, str(tmp_path), tensorboard=False)
    tiny_model().fit(x, y, validation_split=0.3, epochs=3, verbose=0, callbacks=suite)
    close_suite(suite)
    assert helpers.Gcf.get_all_fig_managers() == []


def test_last_epoch_mistakes_summary_equals_a_brute_force_top_64_over_predict(split_run):
    acc = accumulator(os.path.join(split_run["run_dir"], "monitor"))
    events = acc.Tensors(f"training_monitor/mistakes/validation/{BLOCK}")
    assert [e.step for e in events] == list(range(EPOCHS))
    payload = tf.make_ndarray(events[-1].tensor_proto)
    records = json.loads(payload[0].decode())
    probs = split_run["model"].predict(split_run["x_val"], verbose=0)
    y = split_run["y_val"]
    wrong = np.flatnonzero(probs.argmax(1) != y)
    expected = wrong[np.lexsort((wrong, -probs.max(1)[wrong]))][:64]
    assert sorted(r["position"] for r in records) == sorted(expected.tolist())
    for record in records:
        assert record["true"] == y[record["position"]] != record["predicted"]
        assert abs(record["confidence"] - probs[record["position"]].max()) < 1e-5
    assert len(payload) == len(records) + 1 and all(p.startswith(b"\x89PNG") for p in payload[1:])
