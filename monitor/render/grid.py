"""The prediction grid: images titled "truth : prediction (87%)", green right / red wrong."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from monitor.render.blit import TEXT_CACHE_BYTES, Blitter
from monitor.render.images import DisplayTransform, display_images
from monitor.render.names import GRID_NAME_WIDTH, short_name
from monitor.render.panels import canvas_size, figure_box, fitted, paste_all, to_rgb8
from monitor.render.png import DPI

RIGHT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"


class PredictionGridRenderer:
    """Grid of images titled "truth : prediction (87%)", green right / red wrong.

    The images are pasted by pixel (no Axes) once and kept: the suite shows the same validation
    images every epoch, so only the titles are redrawn. New images rebuild it.
    """

    def __init__(self, class_names: Sequence[str], cols: int = 6,
                 display_transform: DisplayTransform | None = None, *,
                 text_cache_bytes: int = TEXT_CACHE_BYTES, images_change: bool = False, label_lines: int = 1):
        self.label_lines = label_lines  # lines of each image's title (2: a multi-label head's)
        self.names = [short_name(n, GRID_NAME_WIDTH) for n in class_names]
        self.cols = cols
        self.display_transform = display_transform
        self.text_cache_bytes = text_cache_bytes
        # True: new images each call (the most confident mistakes), redrawn over the cached
        # frame like the titles; False: the same images every epoch, kept in the background.
        self.images_change = images_change
        self._blit: Blitter | None = None
        self._key = None

    def render(self, images, true_idx, pred_idx, confidence, title: str,
               positive: int | None = None) -> bytes:
        """`confidence`: the predicted class's probability ("(87%)"), or with `positive` (a binary
        head) the probability of that class, titled "cat : dog (p(dog) 0.83)"."""
        true_idx = np.asarray(true_idx).reshape(-1)
        pred_idx = np.asarray(pred_idx).reshape(-1)
        confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
        images = np.asarray(images)
        k = images.shape[0] if images.ndim >= 3 else -1
        if not (len(true_idx) == len(pred_idx) == len(confidence) == k):
            raise ValueError("images, true_idx, pred_idx and confidence lengths differ")
        texts = []
        for t, p, c in zip(true_idx, pred_idx, confidence, strict=True):
            shown = f"p({self.names[positive]}) {c:.2f}" if positive is not None else f"{100.0 * c:.0f}%"
            texts.append(f"{self.names[int(t)]} : {self.names[int(p)]} ({shown})")
        return self.render_texts(images, texts, true_idx.astype(np.int64) == pred_idx.astype(np.int64), title)

    def render_texts(self, images, texts: Sequence[str], right: Sequence[bool], title: str) -> bytes:
        """The images titled with `texts`, green where `right`, red elsewhere."""
        images = np.asarray(images)
        k = images.shape[0] if images.ndim >= 3 else -1
        if not (len(texts) == len(right) == k):
            raise ValueError("images, texts and right lengths differ")
        content = 0 if self.images_change else hash(images.tobytes())
        key = (images.shape, images.dtype.str, content, len(title))
        shown = display_images(images, self.display_transform) if self.images_change else None
        if self._blit is None or key != self._key:
            self._build(display_images(images, self.display_transform) if shown is None else shown, title)
            self._key = key
        elif shown is not None:
            self._shown = to_rgb8(shown)
        for text, label, ok in zip(self._labels, texts, right, strict=True):
            text.set_text(label)
            text.set_color(RIGHT_COLOR if ok else WRONG_COLOR)
        self._title.set_text(title)
        return self._blit.png()

    def _build(self, imgs: np.ndarray, title: str) -> None:
        k = imgs.shape[0]
        ncols = max(1, min(self.cols, k))
        nrows = max(1, math.ceil(k / ncols))
        extra = 0.17 * (self.label_lines - 1)  # room for more lines of each image's title
        cell_w, cell_h, band = 2.3, 2.35 + extra, 0.5 + extra
        title_w = 0.6 * 13 / 72 * len(title) + 0.4  # rough width of the 13 pt suptitle
        fig = Figure(figsize=(max(cell_w * ncols, title_w), cell_h * nrows + band), dpi=DPI)
        top = 1.0 - band / (cell_h * nrows + band)
        cells = GridSpec(nrows, ncols, left=0.01, right=0.99, bottom=0.01, top=top - 0.01, wspace=0.08,
                         hspace=0.25)
        self._title = fig.suptitle(title, fontsize=13, y=1.0 - 0.12 / (cell_h * nrows + band), va="top")
        self._labels, self._boxes = [], []
        fig_height, fig_width = canvas_size(fig)
        for i in range(k):
            box = fitted(figure_box(fig, cells[i].get_position(fig).bounds), *imgs.shape[1:3])
            self._boxes.append(box)
            left, _, right, box_top = box.figure_fraction(fig_height, fig_width)
            # 3% of the image's height above it, as an axes text at (0.5, 1.03) would be
            self._labels.append(fig.text((left + right) / 2, box_top + 0.03 * box.height / fig_height, " ",
                                         ha="center", va="bottom", fontsize=9))
        self._shown = to_rgb8(imgs)
        dynamic = [self._title, *self._labels]

        def paint(pixels: np.ndarray) -> None:
            paste_all(pixels, self._boxes, self._shown)
        self._blit = Blitter(fig, dynamic, self.text_cache_bytes, paint=paint if self.images_change else None,
                             paint_background=None if self.images_change else paint)


def multilabel_titles(truth: np.ndarray, probs: np.ndarray, threshold: float,
                      class_names: Sequence[str], width: int = 30) -> tuple[list[str], list[bool]]:
    """Two-line grid titles of a multi-label head, "true: cat, dog" over "pred: cat 0.91, car 0.62"
    (the labels with p >= threshold, most probable first; "-" for none), each line cut to `width`
    characters; and whether each predicted set equals the true set."""
    truth, probs = np.asarray(truth) > 0, np.asarray(probs, np.float64)
    names = [short_name(n, GRID_NAME_WIDTH) for n in class_names]
    texts, right = [], []
    for t, p in zip(truth, probs, strict=True):
        chosen = p >= threshold
        true_set = ", ".join(names[i] for i in np.flatnonzero(t)) or "-"
        order = np.flatnonzero(chosen)[np.argsort(-p[chosen], kind="stable")]
        pred_set = ", ".join(f"{names[i]} {p[i]:.2f}" for i in order) or "-"
        texts.append(f"{short_name('true: ' + true_set, width)}\n{short_name('pred: ' + pred_set, width)}")
        right.append(bool(np.array_equal(t, chosen)))
    return texts, right


def prediction_grid(
    images: np.ndarray,
    true_idx: Sequence[int],
    pred_idx: Sequence[int],
    confidence: Sequence[float],
    class_names: Sequence[str],
    title: str,
    cols: int = 6,
    display_transform: DisplayTransform | None = None,
) -> bytes:
    """Grid of images titled "truth : prediction (87%)", green right / red wrong."""
    return PredictionGridRenderer(class_names, cols, display_transform, text_cache_bytes=0).render(
        images, true_idx, pred_idx, confidence, title)
