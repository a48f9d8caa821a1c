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
