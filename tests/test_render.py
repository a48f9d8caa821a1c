"""Tests for monitor.render: PNG output, stable sizes, no pyplot figure leaks."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib._pylab_helpers import Gcf

from monitor import render
from monitor.render import bars as bars_module
from monitor.render.large_heatmap import _max_pool

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

LONG = [f"n{i:08d} a class name far longer than any cell" for i in range(1000)]


def _pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _same_picture(a: bytes, b: bytes) -> bool:
    """Equal pixels, up to a few anti-aliased edge pixels of redrawn text."""
    pa, pb = _pixels(a), _pixels(b)
    return pa.shape == pb.shape and float(np.mean(np.abs(pa - pb).max(axis=-1) > 48)) < 0.002


def _sparse_cm(c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cm = np.diag(rng.integers(3, 10, c))
    np.add.at(cm, (rng.integers(0, c, 3 * c), rng.integers(0, c, 3 * c)), 1)
    return cm


def _texts(fig) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text)]


def test_the_ten_class_heatmap_keeps_its_layout() -> None:
    # today's look up to ANNOTATE_MAX_CLASSES: same size as before the large-class work
    assert render.png_size(render.confusion_heatmap(_cm(), CIFAR, TITLE)) == (626, 519)
    assert render.png_size(render.confusion_heatmap(_cm(), DIGITS, TITLE, normalized=False)) == (566, 484)


@pytest.mark.parametrize("classes", [10, 30, 31, 100, 1000])
@pytest.mark.parametrize("normalized", [True, False])
def test_heatmaps_of_many_classes_are_bounded_pngs(classes, normalized) -> None:
    png = render.confusion_heatmap(_sparse_cm(classes) * 1000, LONG[:classes], TITLE, normalized=normalized)
    width, height = _check_png(png, min_side=300)
    assert width <= 1600 and height <= 1200 and len(png) < 400_000


def test_a_dense_thousand_class_matrix_stays_a_few_hundred_kilobytes() -> None:
    cm = np.random.default_rng(0).integers(0, 1000, (1000, 1000))  # noise: the worst case for PNG
    for normalized in (True, False):
        png = render.confusion_heatmap(cm, LONG, TITLE, normalized=normalized)
        width, height = _check_png(png, min_side=300)
        assert width <= 1600 and height <= 1200 and len(png) < 500_000


def test_long_names_fit_inside_the_annotated_heatmap() -> None:
    names = [f"{'W' * 40}{i}" for i in range(30)]
    renderer = render.ConfusionHeatmapRenderer(names, normalized=False)
    width, height = render.png_size(renderer.render(_sparse_cm(30) * 10_000, TITLE))
    assert width <= 1600 and height <= 1200
    fig = renderer._blit.fig
    canvas_renderer = renderer._blit.canvas.get_renderer()
    ax, cax = fig.axes[:2]
    low, high = cax.get_ylim()
    bar_labels = [label for value, label in zip(cax.get_yticks(), cax.get_yticklabels(), strict=True)
                  if low <= value <= high]  # the locator's labels past the ends are not drawn
    assert bar_labels[-1].get_text() == "140000"
    for artist in (ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *bar_labels):
        box = artist.get_window_extent(canvas_renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, artist.get_text()
    assert all(len(label.get_text()) <= render.HEATMAP_NAME_WIDTH for label in ax.get_yticklabels())


def test_the_large_heatmap_annotates_the_most_confused_classes(monkeypatch) -> None:
    calls = {}
    import monitor.render.large_heatmap as module

    original = module.most_confused_classes

    def spy(cm, k):
        calls["chosen"] = original(cm, k)
        return calls["chosen"]

    monkeypatch.setattr(module, "most_confused_classes", spy)
    cm = np.diag(np.full(200, 20))
    cm[17, 123] = 15
    cm[5, 6] = 9
    names = [f"class {i}" for i in range(200)]
    renderer = render.ConfusionHeatmapRenderer(names)
    renderer.render(cm, TITLE)
    assert list(calls["chosen"][:4]) == [17, 123, 5, 6] and len(calls["chosen"]) == render.MOST_CONFUSED
    texts = _texts(renderer._blit._blit.fig)
    assert f"{render.MOST_CONFUSED} most-confused of 200 classes (most off-diagonal mass)" in texts
    assert "class 17 (17)" in texts and "class 6 (6)" in texts and TITLE in texts
    assert "0.43" in texts  # 15 / 35, the sub-matrix's row-normalised cell 17 -> 123

    renderer = render.ConfusionHeatmapRenderer(names, normalized=False, most_confused=3)
    renderer.render(cm, TITLE)
    assert len(calls["chosen"]) == 3
    texts = _texts(renderer._blit._blit.fig)
    assert "3 most-confused of 200 classes (most off-diagonal mass)" in texts and "15" in texts
    render.confusion_heatmap(cm, names, TITLE, most_confused=5)
    assert len(calls["chosen"]) == 5


@pytest.mark.parametrize("cell", [(777, 123), (0, 999), (998, 1)])
def test_no_single_confusion_disappears_from_the_thousand_class_overview(cell) -> None:
    names = [str(i) for i in range(1000)]
    base = np.diag(np.full(1000, 50))
    confused = base.copy()
    confused[cell] = 1  # one sample in 51: 0.02 of its row
    a, b = (_pixels(render.confusion_heatmap(cm, names, TITLE)) for cm in (base, confused))
    left = a.shape[1] * 45 // 100  # the overview; the sub-matrix (right) changes anyway
    assert np.abs(a[:, :left] - b[:, :left]).max() > 12


def test_max_pool_keeps_every_nonzero_cell() -> None:
    data = np.zeros((5, 5))
    data[4, 0] = 0.25
    data[1, 3] = 1.0
    pooled = _max_pool(data, 2)
    np.testing.assert_array_equal(pooled, [[0, 1.0, 0], [0, 0, 0], [0.25, 0, 0]])
    assert _max_pool(data, 1) is data


@pytest.mark.parametrize("classes", [10, 11, 100, 1000])
def test_probability_bars_and_recall_bars_stay_bounded(classes) -> None:
    rng = np.random.default_rng(classes)
    probs = rng.dirichlet(np.full(classes, 0.1), 4)
    png = render.probability_bars(_images("color", 4), [0, 1, 2, 3], probs, LONG[:classes], "t")
    width, height = _check_png(png)
    assert width <= 1000 and height <= 1000 and len(png) < 300_000
    png = render.per_class_recall_bars(rng.random(classes), LONG[:classes], "recall")
    width, height = _check_png(png)
    assert width <= 1000 and height <= 600 and len(png) < 300_000


def test_top_k_bars_name_the_top_classes_and_the_true_one() -> None:
    probs = np.full((2, 50), 0.001)
    probs[0, [7, 8, 9, 10, 11, 12]] = [0.5, 0.2, 0.1, 0.05, 0.04, 0.03]
    probs[1, [3, 4]] = [0.6, 0.3]
    names = [f"c{i}" for i in range(50)]
    renderer = render.ProbabilityBarsRenderer(names, top_k=3)
    renderer.render(_images("color", 2), [40, 4], probs, "t")
    texts = _texts(renderer._blit.fig)
    assert {"c7 50%", "c8 20%", "c9 10%", "c40 0% (true)", "c3 60%", "c4 30% (true)"} <= set(texts)
    assert not {"c10 5%", "c40 0%"} & set(texts)
    assert "50% wrong" in texts and "60% wrong" in texts


def test_recall_bars_name_the_worst_classes() -> None:
    from matplotlib.figure import Figure

    recall = np.linspace(1.0, 0.0, 40)
    names = [f"class {i}" for i in range(40)]
    captured = {}
    original = bars_module.to_png

    def capture(fig: Figure, dpi: int = render.DPI) -> bytes:
        captured["texts"] = "\n".join(_texts(fig))
        return original(fig, dpi)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bars_module, "to_png", capture)
        render.per_class_recall_bars(recall, names, "recall", worst=3)
    lines = [line for line in captured["texts"].splitlines() if line.strip()[:2] in ("1.", "2.", "3.", "4.")]
    assert [line.split()[1:3] for line in lines] == [["class", "39"], ["class", "38"], ["class", "37"]]
    with pytest.raises(ValueError):
        render.per_class_recall_bars(recall[:5], names, "recall")


@pytest.mark.parametrize("classes", [10, 100, 1000])
def test_a_reused_renderer_draws_what_a_fresh_one_draws(classes) -> None:
    names = CIFAR if classes == 10 else LONG[:classes]
    rng = np.random.default_rng(classes)
    probs = rng.dirichlet(np.full(classes, 0.3), 18)
    truth = rng.integers(0, classes, 18)
    images = _images("color", 18)
    cms = [_sparse_cm(classes, 1) * 20, _sparse_cm(classes, 1) * 20]
    moved = np.arange(classes) % 3 * 7  # epoch 2: some of each row moves off the diagonal
    cms[1][np.arange(classes), np.arange(classes)] -= moved
    cms[1][np.arange(classes), (np.arange(classes) + 1) % classes] += moved  # same supports

    def epoch(s):
        return np.roll(probs, s, axis=1)

    cases = {
        "heatmap": (render.ConfusionHeatmapRenderer(names, True),
                    lambda r, s: r.render(cms[s], f"{TITLE} {s}"),
                    lambda s: render.confusion_heatmap(cms[s], names, f"{TITLE} {s}")),
        "counts": (render.ConfusionHeatmapRenderer(names, False),
                   lambda r, s: r.render(cms[s], f"{TITLE} {s}"),
                   lambda s: render.confusion_heatmap(cms[s], names, f"{TITLE} {s}", normalized=False)),
        "grid": (render.PredictionGridRenderer(names),
                 lambda r, s: r.render(images, truth, epoch(s).argmax(1), epoch(s).max(1), f"epoch {s}"),
                 lambda s: render.prediction_grid(images, truth, epoch(s).argmax(1), epoch(s).max(1), names,
                                                  f"epoch {s}")),
        "bars": (render.ProbabilityBarsRenderer(names),
                 lambda r, s: r.render(images[:4], truth[:4], epoch(s)[:4], f"e{s}"),
                 lambda s: render.probability_bars(images[:4], truth[:4], epoch(s)[:4], names, f"e{s}")),
    }
    for kind, (renderer, reuse, fresh) in cases.items():
        first = reuse(renderer, 0)
        again = reuse(renderer, 1)
        assert again == fresh(1), kind  # the very same PNG bytes
        assert np.sum(np.abs(_pixels(first) - _pixels(again)).max(axis=-1) > 48) > 20, kind  # it changed
        assert reuse(renderer, 0) == first == fresh(0), kind  # back again: texts pasted from the cache
        assert reuse(renderer, 1) == again, kind


def test_the_text_cache_is_exact_and_bounded() -> None:
    cms = [_sparse_cm(10, seed) * 50 for seed in range(6)]
    cached = render.ConfusionHeatmapRenderer(CIFAR)
    pngs = [cached.render(cm, TITLE) for cm in cms]
    blit = cached._blit
    assert blit.text_cache and blit._cached_bytes == sum(p.nbytes for p in blit.text_cache.values())
    assert [cached.render(cm, TITLE) for cm in cms] == pngs  # every text pasted this time

    budget = 200_000  # room for about 70 cell texts of the 100 a matrix has: the cache must evict
    small = render.ConfusionHeatmapRenderer(CIFAR)
    small.render(cms[0], TITLE)
    small._blit.text_cache_bytes = budget
    small._blit.text_cache.clear()
    small._blit._cached_bytes = 0
    evicted = False
    for cm in cms * 2:
        assert small.render(cm, TITLE) == cached.render(cm, TITLE)
        assert 0 < small._blit._cached_bytes <= budget
        assert small._blit._cached_bytes == sum(p.nbytes for p in small._blit.text_cache.values())
        evicted |= len(small._blit.text_cache) < len(cached._blit.text_cache)
    assert evicted


def test_renderers_rebuild_when_their_input_changes() -> None:
    truth, pred, probs = _predictions(6)
    a, b = _images("color", 6, seed=1), _images("uint8", 6, seed=2)
    grid = render.PredictionGridRenderer(CIFAR)
    grid.render(a, truth, pred, probs.max(1), "t")
    assert _same_picture(grid.render(b, truth, pred, probs.max(1), "t"),
                         render.prediction_grid(b, truth, pred, probs.max(1), CIFAR, "t"))
    assert _same_picture(grid.render(b[:4], truth[:4], pred[:4], probs[:4].max(1), "t"),
                         render.prediction_grid(b[:4], truth[:4], pred[:4], probs[:4].max(1), CIFAR, "t"))
    bars = render.ProbabilityBarsRenderer(CIFAR)
    bars.render(a[:2], truth[:2], probs[:2], "t")
    assert _same_picture(bars.render(b[:3], truth[:3], probs[:3], "t"),
                         render.probability_bars(b[:3], truth[:3], probs[:3], CIFAR, "t"))
    counts = render.ConfusionHeatmapRenderer(CIFAR, normalized=False)
    counts.render(_cm(0), "t")
    bigger = _cm(0) * 30  # a new largest support: a new colour scale and wider numbers
    assert _same_picture(counts.render(bigger, "t"), render.confusion_heatmap(bigger, CIFAR, "t", False))
    with pytest.raises(ValueError):
        counts.render(np.eye(3), "t")


@pytest.mark.parametrize("classes", [10, 1000])
def test_new_images_of_the_same_size_are_pasted_into_the_kept_figure(classes) -> None:
    # what lets the suite draw the probability bars on stand-in images while the first epoch trains
    names = CIFAR if classes == 10 else LONG[:classes]
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(classes, 0.3), 3)
    truth = rng.integers(0, classes, 3)
    blank = np.zeros((3, 32, 32, 3), np.float32)
    a, b = _images("color", 3, seed=1), _images("color", 3, seed=2)
    bars = render.ProbabilityBarsRenderer(names)
    bars.render(blank, truth, probs, "t")
    kept = bars._blit
    for images in (a, b, a):
        fresh = render.probability_bars(images, truth, probs, names, "t")
        assert bars.render(images, truth, probs, "t") == fresh
    assert bars._blit is kept  # pasted, not built again


def test_short_names_keep_short_ones_and_cut_long_ones() -> None:
    assert render.short_name("cat") == "cat"
    assert render.short_name("automobile", 10) == "automobile"
    assert render.short_name("n01440764_tench_tinca_tinca", 10) == "n01440764…"
    assert len(render.short_name("x" * 40)) == render.NAME_WIDTH
    assert render.short_name(7, 3) == "7"
    assert render.short_name("airplane, aeroplane, plane", 11) == "airplane…"  # no dangling ", "
    assert render.short_name("bird (any of the class Aves)", 11) == "bird (any…"
    assert render.short_name("((((((((", 4) == "(((…"
    assert all(len(render.short_name(f"name number {i} " * 3, w)) <= w
               for i in range(3) for w in range(1, 30))


def test_grid_titles_shorten_long_names() -> None:
    names = ["a_very_long_class_name_number_one", "short"]
    renderer = render.PredictionGridRenderer(names)
    renderer.render(_images("color", 2), [0, 1], [1, 1], [0.5, 0.9], "t")
    texts = _texts(renderer._blit.fig)
    assert f"{render.short_name(names[0], render.GRID_NAME_WIDTH)} : short (50%)" in texts
    assert "short : short (90%)" in texts


ORIGINAL = np.random.default_rng(7).random((6, 8, 8, 3)).astype(np.float32)
ORIGINAL[0, 0, 0] = 0.0
ORIGINAL[0, 0, 1] = 1.0  # every channel spans [0, 1] over the batch
UNEQUAL = ORIGINAL * np.array([1.0, 0.6, 0.3], dtype=np.float32) + np.array([0, 0, 0.2], dtype=np.float32)
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.mark.parametrize(("name", "original", "forward"), [
    ("unit", ORIGINAL, lambda x: x),
    ("dark unit, not stretched", ORIGINAL * 0.5, lambda x: x),
    ("an odd range, stretched", ORIGINAL, lambda x: x * 1.5 + 0.1),
    ("uint8", ORIGINAL, lambda x: np.round(x * 255).astype(np.uint8)),
    ("0-255", ORIGINAL, lambda x: x * 255.0),
    ("0-255 with resampling overshoot", ORIGINAL, lambda x: x * 257.0 - 1.0),
    ("minus-one-one", ORIGINAL, lambda x: x * 2.0 - 1.0),
    ("standardised", ORIGINAL, lambda x: (x - x.mean()) / x.std()),
    ("standardised, channels of unequal range", UNEQUAL, lambda x: (x - x.mean()) / x.std()),
    ("standardised by data-set statistics", ORIGINAL, lambda x: (x - 0.4) / 0.27),
    ("per-channel standardised", ORIGINAL, lambda x: (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))),
    ("per-channel, data-set statistics", ORIGINAL, lambda x: (x - [0.49, 0.48, 0.45]) / [0.25, 0.24, 0.26]),
    ("imagenet mean/std (torch)", ORIGINAL, lambda x: (x - IMAGENET_MEAN) / IMAGENET_STD),
    ("keras caffe (BGR, mean pixel)", ORIGINAL, lambda x: (x * 255.0)[..., ::-1] - render.CAFFE_BGR_MEAN),
    ("grey standardised", ORIGINAL[..., :1], lambda x: (x - x.mean()) / x.std()),
])
def test_images_in_any_range_come_back_as_the_eye_expects(name, original, forward) -> None:
    images = forward(original)
    images = images if images.dtype == np.uint8 else images.astype(np.float32)
    shown = render.display_images(images)
    assert shown.dtype == np.float32 and shown.shape == original.shape
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    assert np.abs(shown - original).max() < 0.02, name


def test_the_mapping_is_decided_for_the_whole_batch() -> None:
    original = np.stack([ORIGINAL[0], ORIGINAL[1] * 0.5])  # the second image is dark
    batch = (original - 0.5) / 0.25
    np.testing.assert_allclose(render.display_images(batch), original, atol=1e-5)  # and stays dark
    assert np.abs(render.display_images(batch[1:]) - original[1:]).max() > 0.2  # alone it would not


def test_non_finite_pixels_do_not_break_the_display() -> None:
    images = ORIGINAL * 255.0
    images[1, 2, 3] = np.nan
    images[2, 0, 0, 0] = np.inf
    shown = render.display_images(images)
    assert np.isfinite(shown).all() and shown[1, 2, 3].max() == 0.0
    np.testing.assert_allclose(shown[3:], ORIGINAL[3:], atol=1e-6)


def test_a_display_transform_of_the_user_wins() -> None:
    mean, std = 0.5, 0.25
    standardised = (ORIGINAL - mean) / std
    shown = render.display_images(standardised, transform=lambda x: x * std + mean)
    np.testing.assert_allclose(shown, ORIGINAL, atol=1e-6)
    as_uint8 = render.display_images(standardised,
                                     transform=lambda x: np.uint8(np.clip(x * std + mean, 0, 1) * 255))
    assert np.abs(as_uint8 - ORIGINAL).max() <= 1 / 255 + 1e-6
    inverted = render.display_images(standardised, transform=lambda x: 1.0 - (x * std + mean))
    np.testing.assert_allclose(inverted, 1.0 - ORIGINAL, atol=1e-6)  # honoured, not re-detected

    seen = []

    def transform(x):
        seen.append(x.shape)
        return np.clip(x * std + mean, 0, 1)

    args = (standardised[:2], [0, 1], [0, 1], [0.9, 0.8], CIFAR, "t")
    png = render.prediction_grid(*args, display_transform=transform)
    assert seen == [(2, 8, 8, 3)] and _same_picture(png, render.prediction_grid(
        ORIGINAL[:2], *args[1:]))
    png = render.probability_bars(standardised[:2], [0, 1], np.eye(10)[[0, 1]], CIFAR, "t",
                                  display_transform=transform)
    assert len(seen) == 2 and _same_picture(png, render.probability_bars(
        ORIGINAL[:2], [0, 1], np.eye(10)[[0, 1]], CIFAR, "t"))


def test_a_grid_whose_images_change_every_call_draws_what_a_fresh_one_draws():
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    rng = np.random.default_rng(5)
    reused = render.PredictionGridRenderer(names, 6, images_change=True)
    pngs = []
    for epoch in range(3):
        images = rng.random((12, 32, 32, 3)).astype(np.float32)
        true, conf = rng.integers(0, 10, 12), rng.random(12)
        args = (images, true, (true + 1) % 10, conf, f"Most confident mistakes, epoch {epoch + 1}/3")
        fresh = render.PredictionGridRenderer(names, 6, text_cache_bytes=0).render(*args)
        pngs.append(reused.render(*args))
        assert pngs[-1] == fresh
    assert len(set(pngs)) == 3


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 1), (37, 53, 3), (37, 53, 4), (1, 9, 3), (9, 1, 4)])
def test_encoded_pngs_decode_to_the_same_pixels(shape) -> None:
    import io

    from PIL import Image

    from monitor.render.png import encode_png

    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    pixels[: shape[0] // 2] = 200  # flat rows too, as in a picture
    png = encode_png(pixels)
    assert png.startswith(PNG_SIGNATURE) and render.png_size(png) == (shape[1], shape[0])
    decoded = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(decoded, pixels.reshape(decoded.shape))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(pixels.astype(np.float32))


def test_a_canvas_keeps_its_alpha_only_where_a_pixel_is_not_opaque() -> None:
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    from monitor.render.glyphs import GlyphCanvas
    from monitor.render.png import canvas_png

    opaque, clear = Figure(figsize=(2, 1), dpi=80), Figure(figsize=(2, 1), dpi=80)
    clear.patch.set_alpha(0.0)
    modes = []
    for fig in (opaque, clear):
        canvas = GlyphCanvas(fig)
        canvas.draw()
        decoded = Image.open(io.BytesIO(canvas_png(canvas)))
        assert np.array_equal(np.asarray(decoded.convert("RGBA")), np.asarray(canvas.buffer_rgba()))
        modes.append(decoded.mode)
    assert modes == ["RGB", "RGBA"]


def test_a_reused_reliability_diagram_draws_what_a_fresh_one_draws() -> None:
    from monitor.calibration import bin_statistics, reliability
    from monitor.render.reliability import ReliabilityRenderer, reliability_png

    rng = np.random.default_rng(5)
    renderer = ReliabilityRenderer()
    cases = [(rng.random(400) ** 0.3, 0.7, 15), (rng.random(400), 1.2, 15),  # over-, under-confident
             (np.full(50, 0.95), 0.0, 15), (rng.random(300), 0.9, 10)]          # one bin; fewer bins
    pictures = []
    for epoch, (confidence, skill, bins) in enumerate(cases):
        correct = rng.random(len(confidence)) < np.clip(confidence * skill, 0, 1)
        stats = reliability(**bin_statistics(confidence, correct, bins))
        png = renderer.render(stats, f"Validation, epoch {epoch}")
        assert png == reliability_png(stats, f"Validation, epoch {epoch}")
        pictures.append(png)
    assert len(set(pictures)) == len(cases)
