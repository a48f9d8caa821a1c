"""Tests for monitor.render: PNG output, stable sizes, no pyplot figure leaks."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib._pylab_helpers import Gcf

from monitor import render

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DIGITS = [str(i) for i in range(10)]
TITLE = "Validation confusion matrix — epoch 3/31 — accuracy 0.712"


def _cm(seed: int = 0, empty_row: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cm = rng.integers(0, 40, (10, 10)) + np.diag(rng.integers(200, 900, 10))
    if empty_row is not None:
        cm[empty_row] = 0
    return cm


def _images(kind: str, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gray":
        return rng.random((k, 28, 28, 1)).astype(np.float32)
    if kind == "gray255":
        return (rng.random((k, 28, 28, 1)) * 255).astype(np.float32)
    if kind == "uint8":
        return rng.integers(0, 256, (k, 32, 32, 3), dtype=np.uint8)
    return rng.random((k, 32, 32, 3)).astype(np.float32)


def _predictions(k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(10, 0.3), k)
    pred = probs.argmax(axis=1)
    truth = np.where(rng.random(k) < 0.6, pred, rng.integers(0, 10, k))
    return truth, pred, probs


def _check_png(png: bytes, min_side: int = 100) -> tuple[int, int]:
    assert isinstance(png, bytes)
    assert png.startswith(PNG_SIGNATURE)
    width, height = render.png_size(png)
    assert min_side <= width <= 4000 and min_side <= height <= 4000
    return width, height


def test_png_size_parses_ihdr() -> None:
    png = render.confusion_heatmap(np.diag([1, 2]), ["a", "b"], "t")
    assert render.png_size(png) == _check_png(png)
    with pytest.raises(ValueError):
        render.png_size(b"not a png at all, definitely not")


@pytest.mark.parametrize("names", [CIFAR, DIGITS])
@pytest.mark.parametrize("normalized", [True, False])
def test_confusion_heatmap(names: list[str], normalized: bool) -> None:
    first = render.confusion_heatmap(_cm(), names, TITLE, normalized=normalized)
    second = render.confusion_heatmap(_cm(), names, TITLE, normalized=normalized)
    width, height = _check_png(first, min_side=300)
    assert render.png_size(second) == (width, height)


def test_confusion_heatmap_empty_row_and_all_zero() -> None:
    _check_png(render.confusion_heatmap(_cm(empty_row=3), CIFAR, TITLE))
    _check_png(render.confusion_heatmap(np.zeros((10, 10), dtype=int), CIFAR, TITLE))
    _check_png(render.confusion_heatmap(np.zeros((10, 10), dtype=int), CIFAR, TITLE, normalized=False))


@pytest.mark.parametrize(
    "kind, names", [("color", CIFAR), ("gray", DIGITS), ("gray255", DIGITS), ("uint8", CIFAR)]
)
@pytest.mark.parametrize("k", [1, 18])
def test_prediction_grid(kind: str, names: list[str], k: int) -> None:
    truth, pred, probs = _predictions(k)
    args = (_images(kind, k), truth, pred, probs.max(axis=1), names, "Test predictions — epoch 3/31")
    first = render.prediction_grid(*args)
    size = _check_png(first)
    assert render.png_size(render.prediction_grid(*args)) == size
    if k == 18:
        assert size[0] > size[1]  # 3 rows x 6 columns


@pytest.mark.parametrize("kind, names", [("color", CIFAR), ("gray", DIGITS)])
@pytest.mark.parametrize("k", [1, 4])
def test_probability_bars(kind: str, names: list[str], k: int) -> None:
    truth, _, probs = _predictions(k, seed=3)
    args = (_images(kind, k), truth, probs, names, "Class probabilities — epoch 3/31")
    first = render.probability_bars(*args)
    size = _check_png(first)
    assert render.png_size(render.probability_bars(*args)) == size


def test_probability_bars_all_correct_and_one_hot() -> None:
    probs = np.eye(10)[[3, 5]]
    _check_png(render.probability_bars(_images("color", 2), [3, 5], probs, CIFAR, "t"))


def test_renderers_do_not_register_pyplot_figures() -> None:
    truth, pred, probs = _predictions(4)
    images = _images("color", 4)
    before = len(Gcf.get_all_fig_managers())
    for _ in range(30):
        render.confusion_heatmap(np.diag([3, 4, 5]), ["a", "b", "c"], "small")
    for _ in range(3):
        render.prediction_grid(images, truth, pred, probs.max(axis=1), CIFAR, "grid")
        render.probability_bars(images, truth, probs, CIFAR, "bars")
    assert len(Gcf.get_all_fig_managers()) == before == 0


# -- scale, reuse and display ranges (issue: 100 and 1,000 classes, any input range) ----------

def _sparse_cm(c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cm = np.diag(rng.integers(3, 10, c))
    np.add.at(cm, (rng.integers(0, c, 3 * c), rng.integers(0, c, 3 * c)), 1)
    return cm


@pytest.mark.parametrize("classes", [10, 100, 1000])
@pytest.mark.parametrize("normalized", [True, False])
def test_heatmaps_of_many_classes_are_bounded_pngs(classes, normalized) -> None:
    names = [f"class_with_a_long_name_{i:04d}" for i in range(classes)]
    png = render.confusion_heatmap(_sparse_cm(classes), names, TITLE, normalized=normalized)
    width, height = _check_png(png, min_side=300)
    assert width <= 1600 and height <= 1200 and len(png) < 400_000


def test_most_confused_classes_picks_the_largest_off_diagonal_mass() -> None:
    from monitor.metrics import most_confused_classes

    cm = np.diag([50] * 6)
    cm[4, 1] = 9   # class 4 -> 1: mass 9 for both
    cm[2, 4] = 3   # class 4 gains 3 more (12), class 2 gets 3
    cm[0, 5] = 1
    assert list(most_confused_classes(cm, 3)) == [4, 1, 2]
    assert list(most_confused_classes(cm, 10)) == [4, 1, 2, 0, 5, 3]
    assert list(most_confused_classes(np.diag([5, 5]), 1)) == [0]  # ties by index


def test_the_large_heatmap_annotates_the_most_confused_classes(monkeypatch) -> None:
    calls = {}
    import monitor.render as module

    original = module.most_confused_classes

    def spy(cm, k):
        calls["chosen"] = original(cm, k)
        return calls["chosen"]

    monkeypatch.setattr(module, "most_confused_classes", spy)
    cm = np.diag(np.full(200, 20))
    cm[17, 123] = 15
    render.confusion_heatmap(cm, [str(i) for i in range(200)], TITLE)
    assert {17, 123} <= set(calls["chosen"].tolist()) and len(calls["chosen"]) == render.MOST_CONFUSED


@pytest.mark.parametrize("classes", [10, 100, 1000])
def test_probability_bars_and_recall_bars_stay_bounded(classes) -> None:
    names = [f"class_with_a_long_name_{i:04d}" for i in range(classes)]
    rng = np.random.default_rng(classes)
    probs = rng.dirichlet(np.full(classes, 0.1), 4)
    width, height = _check_png(render.probability_bars(_images("color", 4), [0, 1, 2, 3], probs, names, "t"))
    assert width <= 1000 and height <= 1000
    recall = rng.random(classes)
    width, height = _check_png(render.per_class_recall_bars(recall, names, "recall"))
    assert width <= 1000 and height <= 600


def test_a_reused_renderer_draws_what_a_fresh_one_draws() -> None:
    import io

    from PIL import Image

    def pixels(png):
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)

    truth, pred, probs = _predictions(18)
    images = _images("color", 18)
    def grid_reuse(r, s):
        return r.render(images, truth, np.roll(pred, s), probs.max(1), f"epoch {s}")

    def grid_fresh(s):
        return render.prediction_grid(images, truth, np.roll(pred, s), probs.max(1), CIFAR, f"epoch {s}")

    def bars_reuse(r, s):
        return r.render(images[:4], truth[:4], np.roll(probs[:4], s, axis=1), f"e{s}")

    def bars_fresh(s):
        return render.probability_bars(images[:4], truth[:4], np.roll(probs[:4], s, axis=1), CIFAR, f"e{s}")

    cases = [
        (render.ConfusionHeatmapRenderer(CIFAR, True), lambda r, s: r.render(_cm(s), f"{TITLE} {s}"),
         lambda s: render.confusion_heatmap(_cm(s), CIFAR, f"{TITLE} {s}")),
        (render.PredictionGridRenderer(CIFAR), grid_reuse, grid_fresh),
        (render.ProbabilityBarsRenderer(CIFAR), bars_reuse, bars_fresh),
    ]
    for renderer, reuse, fresh in cases:
        reuse(renderer, 0)
        again, new = pixels(reuse(renderer, 1)), pixels(fresh(1))
        assert again.shape == new.shape
        # the same picture; anti-aliased edges of redrawn text may differ by a few levels
        assert np.mean(np.abs(again - new) > 48) < 0.002, type(renderer).__name__
        assert np.abs(pixels(reuse(renderer, 0)) - again).sum() > 0  # and it did change


def test_short_names_keep_short_ones_and_cut_long_ones() -> None:
    assert render.short_name("cat") == "cat"
    assert render.short_name("n01440764_tench_tinca_tinca", 10) == "n01440764…"
    assert len(render.short_name("x" * 40)) == render.NAME_WIDTH


ORIGINAL = np.random.default_rng(7).random((6, 8, 8, 3)).astype(np.float32)
ORIGINAL[0, 0, 0] = 0.0
ORIGINAL[0, 0, 1] = 1.0  # every channel spans [0, 1] over the batch


@pytest.mark.parametrize(("name", "forward"), [
    ("unit", lambda x: x),
    ("uint8", lambda x: np.round(x * 255).astype(np.uint8)),
    ("0-255", lambda x: x * 255.0),
    ("minus-one-one", lambda x: x * 2.0 - 1.0),
    ("standardised", lambda x: (x - x.mean()) / x.std()),
    ("per-channel", lambda x: (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])),
])
def test_images_in_any_range_come_back_as_the_eye_expects(name, forward) -> None:
    shown = render.display_images(forward(ORIGINAL))
    assert shown.dtype == np.float32 and shown.min() >= 0.0 and shown.max() <= 1.0
    assert np.abs(shown - ORIGINAL).max() < 0.02, name


def test_a_display_transform_of_the_user_wins() -> None:
    mean, std = 0.5, 0.25
    standardised = (ORIGINAL - mean) / std
    shown = render.display_images(standardised, transform=lambda x: x * std + mean)
    np.testing.assert_allclose(shown, ORIGINAL, atol=1e-6)
    png = render.prediction_grid(standardised[:2], [0, 1], [0, 1], [0.9, 0.8], CIFAR, "t",
                                 display_transform=lambda x: np.clip(x * std + mean, 0, 1))
    _check_png(png)
