"""EvaluationCapture: the streamed state equals what predict() gives, for every label/output form."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix

from monitor.capture import EvaluationCapture
from monitor.metrics import normalize_rows
from tests.helpers import tiny_data, tiny_model
from tests.pr_reference import pr_bucket_histograms


@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("labels", ["sparse", "column", "one_hot"])
@pytest.mark.parametrize("jit", [False, True])
def test_streamed_state_equals_predict(logits, labels, jit):
    x, y = tiny_data(200)
    model = tiny_model(logits=logits, one_hot=labels == "one_hot")
    model.jit_compile = jit
    targets = {"sparse": y, "column": y[:, None], "one_hot": keras.utils.to_categorical(y, 3)}[labels]
    capture = EvaluationCapture(3, num_thresholds=11, sample_slots=6)
    capture.attach(model)
    model.evaluate(x, targets, batch_size=32, verbose=0)
    state = capture.read()
    probs = model.predict(x, batch_size=32, verbose=0)
    if logits:
        probs = tf.nn.softmax(probs).numpy()
    np.testing.assert_array_equal(state.confusion, confusion_matrix(y, probs.argmax(1), labels=range(3)))
    pos, neg = pr_bucket_histograms(y, probs, 11)
    # a score exactly on a bucket edge may land either side in float32: allow a move of one sample
    assert np.abs(state.pos_hist - pos).sum() <= 2 and np.abs(state.neg_hist - neg).sum() <= 2
    filled = state.sample_positions >= 0
    assert filled.all() and state.samples_per_class == 2
    np.testing.assert_array_equal(y[state.sample_positions], state.sample_labels)
    for c in range(3):  # the first two images of each class, in evaluation order
        np.testing.assert_array_equal(np.sort(state.sample_positions[state.sample_labels == c]),
                                      np.flatnonzero(y == c)[:2])
    np.testing.assert_allclose(state.sample_images, x[state.sample_positions])
    np.testing.assert_allclose(state.sample_probs, probs[state.sample_positions], atol=1e-5)


def test_reset_and_detach():
    x, y = tiny_data(100)
    model = tiny_model()
    capture = EvaluationCapture(3)
    capture.attach(model)
    model.evaluate(x, y, verbose=0)
    capture.reset()
    model.evaluate(x[:10], y[:10], verbose=0)
    assert capture.read().count == 10
    capture.detach()
    assert "test_step" not in model.__dict__ and "compute_metrics" not in model.__dict__
    model.evaluate(x, y, verbose=0)
    assert capture.read().count == 10  # detached: nothing more streamed


def test_training_batches_are_not_counted():
    x, y = tiny_data(90)
    model = tiny_model()
    capture = EvaluationCapture(3)
    capture.attach(model)
    model.fit(x, y, epochs=1, batch_size=30, verbose=0)
    assert capture.read().count == 0


class _Constant(keras.layers.Layer):
    """Outputs a fixed probability row for every input."""

    def __init__(self, row, **kwargs):
        super().__init__(**kwargs)
        self.row = row

    def call(self, x):
        return tf.tile(tf.constant([self.row], tf.float32), [tf.shape(x)[0], 1])


def test_one_class_model_gives_a_column_of_ones():
    x, y = tiny_data(60)
    model = keras.Sequential([keras.Input((8, 8, 3)), _Constant([0.1, 0.7, 0.2])])
    model.compile(loss="sparse_categorical_crossentropy")
    capture = EvaluationCapture(3)
    capture.attach(model)
    model.evaluate(x, y, verbose=0)
    norm = normalize_rows(capture.read().confusion)
    np.testing.assert_allclose(norm, [[0, 1, 0]] * 3)


def test_perfect_model_gives_identity_and_empty_class_no_nan():
    y = np.array([0, 1, 0, 1, 0, 1] * 5)  # class 2 never occurs
    x = keras.utils.to_categorical(y, 3).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    model.compile(loss="categorical_crossentropy")
    capture = EvaluationCapture(3)
    with pytest.warns(UserWarning, match="sample images are not captured"):
        capture.attach(model)
    model.evaluate(x, keras.utils.to_categorical(y, 3), verbose=0)
    state = capture.read()
    norm = normalize_rows(state.confusion)
    assert not np.isnan(norm).any()
    np.testing.assert_allclose(norm, np.diag([1.0, 1.0, 0.0]))
    assert state.sample_images is None  # not an image model: no grid, no crash


def test_saved_model_with_capture_attached_loads_with_plain_keras(tmp_path):
    x, y = tiny_data(60)
    model = tiny_model()
    capture = EvaluationCapture(3)
    capture.attach(model)
    model.evaluate(x, y, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    code = ("import sys, keras; m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
            "print(m.count_params())")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == str(model.count_params())


def test_grid_picks_the_same_images_each_pass_and_every_present_class():
    from callbacks.prediction_grid import pick_samples

    x, y = tiny_data(200, classes=3)
    keep = y != 1  # class 1 has no validation images
    x, y = x[keep], y[keep]
    model = tiny_model()
    capture = EvaluationCapture(3, sample_slots=9)
    capture.attach(model)
    picks = []
    for _ in range(2):  # two validation passes, the model changing in between
        capture.reset()
        model.evaluate(x, y, batch_size=32, verbose=0)
        state = capture.read()
        chosen = pick_samples(state, 4)
        picks.append(state.sample_positions[chosen])
        model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(picks[0], picks[1])
    assert list(picks[0]) == sorted(picks[0])  # shown in validation order
    assert set(y[picks[0]]) == {0, 2}
    first = [np.flatnonzero(y == c)[:2] for c in (0, 2)]
    assert set(picks[0]) == set(np.concatenate(first))


def _random_classifier(num_classes, dim=16, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((dim,)), keras.layers.Dense(num_classes, name="head")])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("num_classes", [3, 100, 1000])
def test_counts_equal_sklearn_at_many_classes(num_classes):
    rng = np.random.default_rng(num_classes)
    n = 300
    x = rng.normal(size=(n, 16)).astype("float32") * 3
    y = rng.integers(0, num_classes, n)
    model = _random_classifier(num_classes)
    capture = EvaluationCapture(num_classes, num_thresholds=21, sample_slots=4)
    with pytest.warns(UserWarning, match="not an image"):
        capture.attach(model)
    model.evaluate(x, y, batch_size=64, verbose=0)
    state = capture.read()
    probs = tf.nn.softmax(model.predict(x, batch_size=64, verbose=0)).numpy()
    expected = confusion_matrix(y, probs.argmax(1), labels=range(num_classes))
    np.testing.assert_array_equal(state.confusion, expected)
    pos, neg = pr_bucket_histograms(y, probs, 21)
    assert np.abs(state.pos_hist - pos).sum() <= 2 and np.abs(state.neg_hist - neg).sum() <= 2
    assert state.pos_hist.sum() == n and state.neg_hist.sum() == n * (num_classes - 1)


def test_more_classes_than_slots_keeps_the_first_image_of_the_first_classes_seen():
    num_classes, slots = 50, 6
    rng = np.random.default_rng(3)
    x = rng.random((120, 4, 4, 1), dtype=np.float32)
    y = rng.integers(0, num_classes, 120)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    capture = EvaluationCapture(num_classes, sample_slots=slots)
    capture.attach(model)
    model.evaluate(x, y, batch_size=16, verbose=0)  # classes first seen across several batches
    state = capture.read()
    _, first_index = np.unique(y, return_index=True)
    expected = np.sort(first_index)[:slots]  # first image of each of the first 6 classes seen
    np.testing.assert_array_equal(np.sort(state.sample_positions), expected)
    np.testing.assert_array_equal(state.sample_labels, y[state.sample_positions])
    np.testing.assert_allclose(state.sample_images, x[state.sample_positions])


def test_invalid_labels_are_not_counted():
    x, y = tiny_data(64)
    model = tiny_model()
    capture = EvaluationCapture(3)
    capture.attach(model)
    # Keras' loss would reject these; capture them directly through the wrapped step's update.
    capture._update(tf.constant(x[:4]), tf.constant([0, 7, -1, 2]), tf.constant(
        [[0.9, 0.05, 0.05]] * 4, tf.float32))
    state = capture.read()
    assert state.count == 2 and state.confusion[0, 0] == 1 and state.confusion[2, 0] == 1
    assert state.pos_hist.sum() == 2 and state.neg_hist.sum() == 2 * 2  # valid rows only


def brute_force_mistakes(y: np.ndarray, probs: np.ndarray, m: int) -> np.ndarray:
    """Positions of the `m` most confident wrong predictions, ties by position."""
    predicted, confidence = probs.argmax(1), probs.max(1)
    wrong = np.flatnonzero(predicted != y)
    return wrong[np.lexsort((wrong, -confidence[wrong]))][:m]


@pytest.mark.parametrize("m", [1, 16, 64, 500])
@pytest.mark.parametrize("jit", [False, True])
def test_most_confident_mistakes_equal_a_brute_force_top_m_over_predict(m, jit):
    x, y = tiny_data(300, classes=3, seed=3)
    model = tiny_model(classes=3, logits=True, seed=3)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # some right, many wrong
    model.jit_compile = jit
    capture = EvaluationCapture(3, mistakes=m)
    capture.attach(model)
    model.evaluate(x, y, batch_size=32, verbose=0)  # 10 batches, the last one short
    state = capture.read()
    probs = tf.nn.softmax(model.predict(x, batch_size=32, verbose=0)).numpy()
    expected = brute_force_mistakes(y, probs, m)
    assert 0 < len(expected) < 300
    assert state.mistake_count == len(expected)
    got = state.mistake_positions[: len(expected)]
    # equal confidences (to float32 rounding) may swap order; the confidences must match in order
    np.testing.assert_allclose(state.mistake_confidence[: len(expected)], probs.max(1)[expected], atol=1e-6)
    np.testing.assert_array_equal(np.sort(got), np.sort(expected))
    np.testing.assert_array_equal(state.mistake_labels[: len(expected)], y[got])
    np.testing.assert_array_equal(state.mistake_predicted[: len(expected)], probs.argmax(1)[got])
    np.testing.assert_allclose(state.mistake_images[: len(expected)], x[got])
    assert (state.mistake_labels[len(expected):] == -1).all()
    capture.reset()  # a new pass starts empty
    model.evaluate(x[:40], y[:40], batch_size=32, verbose=0)
    again = capture.read()
    np.testing.assert_array_equal(again.mistake_positions[: again.mistake_count],
                                  brute_force_mistakes(y[:40], probs[:40], m))


@pytest.mark.parametrize("num_classes, slots", [(3, 18), (40, 18)])
def test_the_stand_in_state_has_the_shapes_of_a_real_pass(num_classes, slots):
    # what the suite draws the first epoch's figures on while it trains (callbacks.base)
    capture = EvaluationCapture(num_classes, sample_slots=slots, mistakes=16)
    assert capture.stand_in() is None  # not attached: no image shape known yet
    model = tiny_model(classes=num_classes)
    capture.attach(model)
    x, y = tiny_data(400, classes=num_classes)
    model.evaluate(x, y, verbose=0)
    real, stand_in = capture.read(), capture.stand_in()
    assert real.mistake_count == 16 and (real.sample_positions >= 0).all()  # every slot and mistake filled
    for field in ("confusion", "pos_hist", "neg_hist", "sample_images", "sample_labels", "sample_probs",
                  "sample_positions", "mistake_confidence", "mistake_labels", "mistake_predicted",
                  "mistake_positions", "mistake_images"):
        a, b = getattr(real, field), getattr(stand_in, field)
        assert (a.shape, a.dtype.kind) == (b.shape, b.dtype.kind), field
    assert stand_in.count == 0 and stand_in.mistake_count == 16
    assert sorted(stand_in.calibration) == sorted(real.calibration)
    assert all(stand_in.calibration[k].shape == real.calibration[k].shape for k in real.calibration)
    assert np.allclose(stand_in.sample_probs.sum(axis=1), 1.0)
    labels = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(3, activation="sigmoid")])
    labels.compile("adam", "binary_crossentropy")
    multi_label = EvaluationCapture(3, head="multi_label")
    multi_label.attach(labels)
    assert multi_label.stand_in() is None  # no single predicted class: nothing drawn on a stand-in
