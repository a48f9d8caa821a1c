"""Grad-CAM explanations: the maps equal an independent Grad-CAM, point at the evidence, and the
suite writes them (or warns once and trains on) for every kind of model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from callbacks import close_suite, monitoring_callbacks
from callbacks.explanations import ExplanationsCallback
from monitor import models
from monitor.gradcam import LOGITS, PROBABILITY, GradCam, NoSpatialLayer, spatial_layer
from monitor.render import png_size
from monitor.render.explanations import ExplanationGridRenderer, max_items, upsample
from monitor.runfiles import record
from tests.helpers import NAMES, accumulator, read_tags, tiny_data

ROOT = Path(__file__).resolve().parent.parent
L = keras.layers
BLOCK = "epochs_001-010"
EXPLANATION_TAGS = {f"explanations/mistakes/{BLOCK}", f"explanations/grid/{BLOCK}",
                    f"training_monitor/explanations/validation/{BLOCK}"}


# -- an independent Grad-CAM: the layers run one by one, the score written out by hand ----------

def reference_grad_cam(model, layer_name: str, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N, K, h, w) Grad-CAM of a Sequential `model`, one tape per image and class: the layers are
    called one after another; a final Dense with softmax/sigmoid is replaced by its linear score
    (a one-unit head: +z for class 1, -z for class 0); each map is ReLU(sum_k alpha_k A_k),
    alpha_k = the mean gradient, divided by its maximum."""
    out = []
    for image, wanted in zip(images, classes, strict=True):
        row = []
        for c in wanted:
            with tf.GradientTape() as tape:
                h, features = tf.constant(image[None]), None
                for layer in model.layers:
                    last = layer is model.layers[-1]
                    if last and getattr(layer, "activation", None) in (keras.activations.softmax,
                                                                       keras.activations.sigmoid):
                        h = tf.matmul(h, layer.kernel) + layer.bias
                    else:
                        h = layer(h, training=False)
                    if layer.name == layer_name:
                        features = h
                        tape.watch(features)
                score = (h[0, 0] if c == 1 else -h[0, 0]) if h.shape[-1] == 1 else h[0, max(int(c), 0)]
            grads = tape.gradient(score, features)[0].numpy()
            cam = np.maximum((grads.mean(axis=(0, 1)) * features[0].numpy()).sum(-1), 0.0)
            cam = cam / cam.max() if cam.max() > 0 else cam
            row.append(cam if c >= 0 else np.zeros_like(cam))
        out.append(row)
    return np.array(out, np.float32)


def small_model(head: str):
    """Seeded Sequential models with a spatial layer `conv2` and the head asked for."""
    keras.utils.set_random_seed(3)
    front = [L.Conv2D(6, 3, activation="relu", name="conv1"), L.Conv2D(5, 3, padding="same", name="conv2"),
             L.MaxPooling2D(2, name="pool"), L.Dropout(0.3, name="drop"), L.Flatten(name="flatten")]
    if head == "preprocessing":
        augment = keras.Sequential([L.RandomFlip("horizontal"), L.RandomContrast(0.1)], name="augment")
        front = [L.Rescaling(1 / 255, name="rescale"), augment, *front]
    last = {"softmax": L.Dense(3, activation="softmax"), "logits": L.Dense(3), "preprocessing":
            L.Dense(3, activation="softmax"), "binary_sigmoid": L.Dense(1, activation="sigmoid"),
            "binary_logit": L.Dense(1)}[head]
    return keras.Sequential([keras.Input((10, 10, 3)), *front, L.Dense(8, activation="relu"), last])


@pytest.mark.parametrize("head", ["softmax", "logits", "preprocessing", "binary_sigmoid", "binary_logit"])
def test_maps_equal_an_independent_grad_cam(head):
    model = small_model(head)
    units = model.outputs[0].shape[-1]
    rng = np.random.default_rng(1)
    images = rng.random((6, 10, 10, 3), dtype=np.float32) * (255.0 if head == "preprocessing" else 1.0)
    classes = rng.integers(0, max(units, 2), (6, 2))
    classes[4:, 1] = -1  # a grid image: one class only
    layer = spatial_layer(model)
    cam = GradCam(model, layer)
    assert layer.name == "conv2"  # stepped back over dropout and pooling; augmentation skipped
    assert cam.score == LOGITS
    maps = cam.maps(images, classes)
    assert maps.shape == (6, 2, 8, 8)
    np.testing.assert_allclose(maps, reference_grad_cam(model, "conv2", images, classes), atol=2e-5)
    assert np.all(maps[4:, 1] == 0) and maps[:, 0].max() == pytest.approx(1.0)


def test_an_output_only_known_as_probabilities_is_explained_through_them():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 10, 3))
    features = L.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    scores = L.Dense(3, activation="tanh")(L.Flatten()(features))
    model = keras.Model(inputs, L.Lambda(lambda t: tf.nn.softmax(t), name="probs")(scores))
    cam = GradCam(model, spatial_layer(model))
    assert cam.score == PROBABILITY
    images = np.random.default_rng(0).random((3, 10, 10, 3), dtype=np.float32)
    with tf.GradientTape() as tape:
        x = tf.constant(images)
        a = model.get_layer("conv")(x)
        tape.watch(a)
        p = model.layers[-1](model.layers[-2](model.layers[-3](a)))
        score = tf.reduce_sum(p[:, 2])
    g = tape.gradient(score, a).numpy()
    ref = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a.numpy()).sum(-1), 0)
    top = ref.max(axis=(1, 2), keepdims=True)
    ref = np.where(top > 0, ref / np.where(top > 0, top, 1.0), 0.0)
    assert np.any(top > 0)
    np.testing.assert_allclose(cam.maps(images, np.full((3, 1), 2))[:, 0], ref, atol=2e-5)


def test_the_layer_is_found_in_reference_and_functional_models():
    assert spatial_layer(models.build("dropout", (32, 32, 3), 10)).name == "block3_conv2"
    assert spatial_layer(models.build("tutorial", (32, 32, 3), 10)).name == "conv3"  # Rescaling first
    inputs = keras.Input((12, 12, 3))
    a = L.Conv2D(4, 3, name="a")(inputs)
    b = L.Conv2D(4, 3, name="b")(inputs)  # after `a` in the layer list, but on the other head's path
    heads = [L.Dense(3, activation="softmax", name="classes")(L.Flatten()(a)),
             L.Dense(1, name="aux")(L.GlobalAveragePooling2D()(b))]
    model = keras.Model(inputs, heads)
    assert spatial_layer(model, output="classes").name == "a"
    assert spatial_layer(model, output=1).name == "b"
    assert spatial_layer(model, explain_layer="b", output="classes").name == "b"
    with pytest.raises(ValueError, match="no 4-D"):
        spatial_layer(model, explain_layer="classes")
    mlp = keras.Sequential([keras.Input((8, 8, 3)), L.Rescaling(0.5), L.Flatten(), L.Dense(3)])
    with pytest.raises(NoSpatialLayer):
        spatial_layer(mlp)


def test_a_nested_base_model_is_explained_at_its_output_in_the_outer_graph():
    keras.utils.set_random_seed(0)
    base_in = keras.Input((12, 12, 3))
    base = keras.Model(base_in, L.Conv2D(4, 3, activation="relu")(L.Conv2D(4, 3)(base_in)), name="base")
    inputs = keras.Input((12, 12, 3))
    pooled = L.GlobalAveragePooling2D()(base(L.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, L.Dense(3, activation="softmax", name="head")(pooled))
    layer = spatial_layer(model)
    assert layer is base
    images = np.random.default_rng(0).random((4, 12, 12, 3), dtype=np.float32) * 255
    head = model.get_layer("head")
    refs = []
    for c in range(3):
        with tf.GradientTape() as tape:
            features = base(images / 255)
            tape.watch(features)
            z = tf.matmul(tf.reduce_mean(features, axis=(1, 2)), head.kernel) + head.bias
            score = tf.reduce_sum(z[:, c])
        g = tape.gradient(score, features).numpy()
        ref = np.maximum((g.mean(axis=(1, 2), keepdims=True) * features.numpy()).sum(-1), 0)
        top = ref.max(axis=(1, 2), keepdims=True)
        refs.append(np.where(top > 0, ref / np.where(top > 0, top, 1), 0))
    refs = np.stack(refs, axis=1)
    assert refs.max() == 1.0
    maps = GradCam(model, layer).maps(images, np.tile(np.arange(3), (4, 1)))
    np.testing.assert_allclose(maps, refs, atol=2e-5)


def test_a_multi_label_head_is_skipped_without_a_warning():
    explain = ExplanationsCallback(None, None, NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explain.write(0, SimpleNamespace(multi_label=object()))
    assert explain.last is None and explain.off is None


def test_upsampling_is_tensorflows_bilinear_resize():
    maps = np.random.default_rng(0).random((2, 3, 5, 4), dtype=np.float32)
    expected = tf.image.resize(np.moveaxis(maps, 1, -1), (13, 9), method="bilinear").numpy()
    np.testing.assert_allclose(upsample(maps, 13, 9), np.moveaxis(expected, -1, 1), atol=1e-5)


@pytest.mark.parametrize("panels", [2, 3])
def test_the_largest_picture_stays_within_1600_by_1200(panels):
    n = max_items(panels)
    pictures = np.random.default_rng(0).random((n, panels, 32, 32, 3), dtype=np.float32)
    png = ExplanationGridRenderer(panels, per_row=2).render(
        pictures, ["cat : dog (87%)"] * n, [False] * n, [["", "why dog?", "where is cat?"][:panels]] * n, "t")
    width, height = png_size(png)
    assert width <= 1600 and height <= 1200, (width, height)


# -- meaningful: the class is decided only by where a bright patch is -----------------------------

class AddCoords(L.Layer):
    """CoordConv's (Liu et al. 2018) two coordinate channels, so convolutions can tell where."""

    def call(self, x):
        h, w = x.shape[1], x.shape[2]
        rows = tf.linspace(-1.0, 1.0, h)[:, None] * tf.ones((1, w))
        cols = tf.ones((h, 1)) * tf.linspace(-1.0, 1.0, w)[None, :]
        coords = tf.tile(tf.stack([rows, cols], -1)[None], [tf.shape(x)[0], 1, 1, 1])
        return tf.concat([x, coords], -1)

    def compute_output_shape(self, shape):
        return (*shape[:-1], shape[-1] + 2)


def patch_images(n: int, size: int = 16, patch: int = 4, seed: int = 0):
    """Noise in [0, 0.4] with a 4x4 patch of 1.0 somewhere in quadrant y (0..3), or none (y = 4);
    `boxes`: (row0, col0, row1, col1) of each patch."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    x = rng.random((n, size, size, 1), dtype=np.float32) * 0.4
    boxes = -np.ones((n, 4), np.int64)
    half = size // 2
    for i, c in enumerate(y):
        if c < 4:
            r0 = c // 2 * half + rng.integers(0, half - patch + 1)
            c0 = c % 2 * half + rng.integers(0, half - patch + 1)
            x[i, r0:r0 + patch, c0:c0 + patch] = 1.0
            boxes[i] = r0, c0, r0 + patch, c0 + patch
    return x, y, boxes


def peak_in_box(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Whether each map's maximum (N, H, W) falls inside its box."""
    rows, cols = np.divmod(maps.reshape(len(maps), -1).argmax(1), maps.shape[2])
    return (rows >= boxes[:, 0]) & (rows < boxes[:, 2]) & (cols >= boxes[:, 1]) & (cols < boxes[:, 3])


def test_the_heat_map_peaks_on_the_patch_that_decides_the_class(tmp_path):
    """A patch in one of four quadrants decides the class; a fifth class has none (else one quadrant
    could be learnt as "no patch elsewhere", evidence with no place). A small CNN that can tell
    where (coordinate channels, global max pooling; Oquab et al. 2015) learns it; then for >= 90%
    of the correctly classified validation images with a patch, Grad-CAM's maximum is inside it.
    Its head starts at zero so that no class weighs the coordinate-only channels (the same ramp in
    every image, no evidence) by the chance of its initial weights."""
    x, y, boxes = patch_images(1600)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 1)), AddCoords(),
                              L.Conv2D(16, 3, padding="same", activation="relu"),
                              L.Conv2D(16, 3, padding="same", activation="relu", name="last_conv"),
                              L.GlobalMaxPooling2D(),
                              L.Dense(5, activation="softmax", kernel_initializer="zeros")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    suite = monitoring_callbacks(["q0", "q1", "q2", "q3", "none"], str(tmp_path), tensorboard=False,
                                 grid_size=20)
    model.fit(x[:1200], y[:1200], validation_data=(x[1200:], y[1200:]), epochs=8, batch_size=32,
              callbacks=suite, verbose=0)
    close_suite(suite)
    xv, yv, bv = x[1200:], y[1200:], boxes[1200:]
    predicted = model.predict(xv, verbose=0).argmax(1)
    right = (predicted == yv) & (yv < 4)
    assert right.mean() > 0.7  # learnt (a fifth of the images have no patch)
    cam = GradCam(model, spatial_layer(model))
    assert cam.layer.name == "last_conv"
    maps = upsample(cam.maps(xv[right], predicted[right])[:, 0], 16, 16)
    hits = peak_in_box(maps, bv[right])
    print(f"Grad-CAM peak inside the patch: {hits.mean():.1%} of {right.sum()} images")
    assert hits.mean() >= 0.9
    # the suite's own maps of its grid images (their predicted class) say the same
    last = next(c for c in suite if isinstance(c, ExplanationsCallback)).last
    positions = last.grid_positions
    shown = (last.grid_predicted == yv[positions]) & (yv[positions] < 4)
    assert shown.sum() >= 5
    grid_hits = peak_in_box(upsample(last.grid_maps[shown], 16, 16), bv[positions][shown])
    assert grid_hits.mean() >= 0.9


def test_maps_of_a_weight_snapshot_are_those_of_the_weights_when_it_was_taken():
    """The background thread's pass reads a snapshot: the same maps as the live weights had, to the
    bit, and still those after training has moved the weights on (and most maps not all zeros: a
    pass whose tape saw nothing gives zeros everywhere)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, 4, 64)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    cam = GradCam(model, spatial_layer(model))
    assert cam.can_snapshot
    classes = np.stack([y[:16], (y[:16] + 1) % 4], axis=1)
    live = cam.maps(x[:16], classes)
    snapshot = cam.snapshot()
    taken = cam.maps(x[:16], classes, snapshot)
    assert np.array_equal(live, taken) and (taken.max(axis=(2, 3)) > 0).mean() > 0.5
    model.fit(x, y, epochs=2, verbose=0)
    assert not np.array_equal(cam.maps(x[:16], classes), live)  # the live weights moved on
    assert np.array_equal(cam.maps(x[:16], classes, snapshot), taken)


# -- the suite ------------------------------------------------------------------------------------

def _fit(model, run_dir, x, y, **suite_kwargs):
    suite = monitoring_callbacks(NAMES, str(run_dir), tensorboard=False, **suite_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, validation_split=0.3, epochs=2, batch_size=32, callbacks=suite, verbose=0)
    close_suite(suite)
    ours = [str(w.message) for w in caught if "monitor" in str(w.message)]
    return suite, history, ours


def _tiny_cnn(logits=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, activation="relu", name="conv"),
                              L.Flatten(), L.Dense(3, activation=None if logits else "softmax")])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    return model


def test_the_suite_writes_explanations_every_epoch_and_the_dashboards_maps(tmp_path):
    x, y = tiny_data(240)
    suite, _, ours = _fit(_tiny_cnn(), tmp_path, x, y)
    assert ours == []
    tags = read_tags(str(tmp_path))["monitor"]
    for tag in EXPLANATION_TAGS:
        assert tags[tag] == [0, 1], tag
    explain = next(c for c in suite if isinstance(c, ExplanationsCallback))
    last = explain.last
    assert last.epoch == 1 and last.layer == "conv" and last.score == LOGITS
    assert last.mistake_maps.shape == (len(last.mistakes), 2, 6, 6) and len(last.mistakes) > 0
    assert last.grid_maps.shape == (18, 6, 6)
    assert explain.seconds_explaining > 0 and explain.seconds_rendering > 0
    dashboard_tag = f"training_monitor/explanations/validation/{BLOCK}"
    events = accumulator(str(tmp_path / "monitor")).Tensors(dashboard_tag)
    payload = events[-1].tensor_proto.string_val
    header = json.loads(payload[0])
    assert header["records"] == last.mistakes and header["map_size"] == [6, 6]
    assert header["layer"] == "conv" and header["maps"] == ["predicted", "true"]
    decoded = np.array([np.asarray(Image.open(io.BytesIO(p))) for p in payload[1:]], np.float32) / 255.0
    np.testing.assert_allclose(decoded.reshape(last.mistake_maps.shape), last.mistake_maps,
                               atol=0.5 / 255 + 1e-6)


def test_the_first_epochs_tracing_waits_for_trainings_first_step(tmp_path, monkeypatch):
    """Until its first step the training thread traces its own step function: the Grad-CAM's
    tracing thread starts after it (sharing the GIL with it had cost training 100+ ms)."""
    seen = []
    build = ExplanationsCallback._build_cam

    def recording(self):
        seen.append(int(self.model.optimizer.iterations.numpy()))
        return build(self)

    monkeypatch.setattr(ExplanationsCallback, "_build_cam", recording)
    x, y = tiny_data(240)
    suite, _, ours = _fit(_tiny_cnn(), tmp_path, x, y)
    assert ours == []
    assert seen and seen[0] >= 1, seen  # the tracing thread's build, after at least one step
    assert next(c for c in suite if isinstance(c, ExplanationsCallback)).last.epoch == 1


def test_a_binary_head_is_explained_for_both_sides(tmp_path):
    x, y = tiny_data(200, classes=2, seed=4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, activation="relu", name="conv"),
                              L.Flatten(), L.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    suite = monitoring_callbacks(["cat", "dog"], str(tmp_path), tensorboard=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, validation_split=0.3, epochs=2, batch_size=32, callbacks=suite, verbose=0)
    close_suite(suite)
    assert [str(w.message) for w in caught if "monitor" in str(w.message)] == []
    last = next(c for c in suite if isinstance(c, ExplanationsCallback)).last
    assert last.score == LOGITS and len(last.mistakes) > 0
    pairs = {(r["predicted"], r["true"]) for r in last.mistakes}
    assert pairs <= {(0, 1), (1, 0)}
    tags = read_tags(str(tmp_path))["monitor"]
    assert {tag: tags.get(tag) for tag in EXPLANATION_TAGS} == {tag: [0, 1] for tag in EXPLANATION_TAGS}


def test_report_shows_the_last_epochs_explanations(tmp_path):
    from monitor.report import build_report

    x, y = tiny_data(120)
    _fit(_tiny_cnn(logits=True), tmp_path, x, y, mistakes=8, grid_size=6)
    record.write(str(tmp_path), {"status": "completed", "flags": {"model": "tiny", "epochs": 2},
                                 "history": {}, "epochs_run": 2})
    page = Path(build_report(str(tmp_path))).read_text(encoding="utf-8")
    assert 'id="explanations"' in page and "epoch 2)" in page.split('id="explanations"')[1][:200]


def test_a_model_without_a_spatial_layer_gets_one_warning_and_trains_on(tmp_path):
    x, y = tiny_data(240)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Rescaling(2.0), L.Flatten(),
                              L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    suite, history, ours = _fit(model, tmp_path, x, y)
    assert len(ours) == 1 and "no Grad-CAM heat maps" in ours[0] and "4-D" in ours[0], ours
    assert len(history.history["loss"]) == 2
    tags = read_tags(str(tmp_path))["monitor"]
    assert not EXPLANATION_TAGS & set(tags)
    assert tags[f"mistakes/most_confident/{BLOCK}"] == [0, 1]  # the rest of the suite goes on


def test_explanations_can_be_turned_off_or_pointed_at_a_layer(tmp_path):
    x, y = tiny_data(120)
    suite, _, _ = _fit(_tiny_cnn(), tmp_path / "off", x, y, explanations=False)
    assert not any(isinstance(c, ExplanationsCallback) for c in suite)
    assert not EXPLANATION_TAGS & set(read_tags(str(tmp_path / "off"))["monitor"])
    suite, _, ours = _fit(_tiny_cnn(), tmp_path / "bad", x, y, explain_layer="flatten_missing")
    assert len(ours) == 1 and "flatten_missing" in ours[0]


MIRRORED = """
import json, sys, warnings
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from callbacks import close_suite, monitoring_callbacks
from callbacks.explanations import ExplanationsCallback
from monitor.gradcam import GradCam, spatial_layer
from tests.helpers import tiny_data
from tests.test_explanations import reference_grad_cam
run_dir, out = sys.argv[1], sys.argv[2]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = tiny_data(330, seed=4)
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
suite = monitoring_callbacks(["cat", "dog", "bird"], run_dir, tensorboard=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model.fit(x[:220], y[:220], validation_data=(x[220:], y[220:]), epochs=2, batch_size=32,
              callbacks=suite, verbose=0)
close_suite(suite)
last = next(c for c in suite if isinstance(c, ExplanationsCallback)).last
state = suite[0].state_for(last.epoch)
images = state.sample_images[last.grid_slots]
classes = last.grid_predicted[:, None]
reference = reference_grad_cam(model, "conv", images, classes)[:, 0]
json.dump({"replicas": strategy.num_replicas_in_sync, "epoch": last.epoch, "grid": len(classes),
           "largest_difference": float(np.abs(reference - last.grid_maps).max()),
           "mistakes": len(last.mistakes),
           "warnings": [str(w.message) for w in caught if "monitor" in str(w.message)]}, open(out, "w"))
"""


def test_mirrored_strategy_over_two_cpus_explains_with_the_trained_weights(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(run_dir), str(out)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2 and result["epoch"] == 1 and result["grid"] == 18
    assert result["warnings"] == [] and result["mistakes"] > 0
    assert result["largest_difference"] < 2e-5  # the maps of the weights fit ended with
    tags = read_tags(str(run_dir))["monitor"]
    assert {tag: tags.get(tag) for tag in EXPLANATION_TAGS} == {tag: [0, 1] for tag in EXPLANATION_TAGS}
