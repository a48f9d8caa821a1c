"""Render metrics and predictions to PNG bytes (arrays in, PNG bytes out).

Only matplotlib's object API is used (``Figure`` + Agg), so no figure is ever
registered with pyplot and nothing accumulates between calls.

Each picture has a renderer class that a callback holds for a whole run. It
draws the parts that do not change between epochs (axes, tick labels, colour
bar, the sample images) once, keeps them as a background, and per epoch draws
only what changed (cell colours and numbers, titles, bar heights) over it: the
same picture for about a fifth of the drawing. The pure functions
(``confusion_heatmap``, ``prediction_grid``, ``probability_bars``) build a fresh
renderer per call. Above ``ANNOTATE_MAX_CLASSES`` classes the heatmap changes
layout (the whole matrix as an image, plus the most-confused classes annotated)
and is redrawn whole.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from monitor.metrics import most_confused_classes, normalize_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 80
RIGHT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"
BAR_COLOR = "#777777"
ANNOTATE_MAX_CLASSES = 30  # above: the matrix as an unannotated image + the most-confused classes
MOST_CONFUSED = 12  # classes in that annotated sub-matrix
ALL_BARS_MAX_CLASSES = 10  # above: probability bars for the top-k classes and the true class
TOP_K = 5
NAME_WIDTH = 14  # characters of a class name in bar labels and sub-matrix ticks
GRID_NAME_WIDTH = 11  # in grid titles, which hold two names in a 2.3-inch cell

DisplayTransform = Callable[[np.ndarray], np.ndarray]


# -- PNG ---------------------------------------------------------------------

def _to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Encode ``fig`` as PNG with fast zlib compression (a full draw)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """The Agg canvas' current pixels as PNG."""
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG, read from its IHDR chunk."""
    if len(png) < 24 or png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


class _Blitter:
    """A figure whose `dynamic` artists are redrawn over a cached background of the rest."""

    def __init__(self, fig: Figure, dynamic: list):
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.dynamic = dynamic
        for artist in dynamic:
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def png(self) -> bytes:
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for artist in self.dynamic:
            artist.draw(renderer)
        return _canvas_png(self.canvas)


# -- names and images --------------------------------------------------------

def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut to ``width`` characters with an ellipsis when longer."""
    name = str(name)
    return name if len(name) <= width else name[: max(width - 1, 1)] + "…"


def display_images(images: np.ndarray, transform: DisplayTransform | None = None) -> np.ndarray:
    """Images (K, H, W[, C]) as float32 in [0, 1], mapped as the eye expects.

    ``transform`` (yours, e.g. undoing your normalisation) wins when given: it gets
    the images and returns uint8 or floats in [0, 1]. Otherwise the range is read
    from the whole batch, so colours agree between images: uint8 and floats in
    [0, 255] are divided by 255, [0, 1] is kept, [-1, 1] is shifted, and anything
    else (standardised inputs) is stretched per channel from its min to its max.
    """
    arr = np.asarray(images if transform is None else transform(np.asarray(images)))
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (K, H, W, C), got {np.shape(images)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    out = np.nan_to_num(arr.astype(np.float32))
    if transform is None and out.size:
        lo, hi = float(out.min()), float(out.max())
        if lo >= 0.0 and hi <= 1.0:
            pass
        elif lo >= 0.0 and hi <= 255.0:
            out = out / 255.0
        elif lo >= -1.0 and hi <= 1.0:
            out = (out + 1.0) / 2.0
        else:  # standardised or otherwise scaled: stretch each channel over the batch
            low = out.min(axis=(0, 1, 2), keepdims=True)
            span = out.max(axis=(0, 1, 2), keepdims=True) - low
            out = (out - low) / np.where(span > 0, span, 1.0)
    return np.clip(out, 0.0, 1.0)


_display_images = display_images  # the name older callers use


def _show(ax: Axes, image: np.ndarray) -> None:
    """Draw one (H, W, C) image in [0, 1]; single channel in grey."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image[..., :3], interpolation="nearest")


# -- confusion heatmap -------------------------------------------------------

def _heatmap_axes(names: Sequence[str], annot_chars: int) -> tuple[Figure, Axes, Axes, float, bool]:
    """Figure, heatmap axes, colorbar axes, annotation font size (0: none) and
    whether x tick labels should be rotated (names longer than 3 characters).

    Margins are computed in inches from the label lengths instead of using a
    layout engine, which would cost ~60 ms per render.
    """
    n = max(len(names), 1)
    label_chars = max((len(s) for s in names), default=1)
    char_in = 0.6 * 10 / 72  # approximate width of a 10 pt character
    left = 0.5 + label_chars * char_in
    rotate = label_chars > 3
    bottom = 0.45 + (0.65 * (label_chars * char_in + 0.15) if rotate else 0.2)
    top, right = 0.45, 1.0
    cell = min(0.55, 16.0 / n)
    width = max(left + cell * n + right, 6.0)
    height = max(bottom + 0.9 * cell * n + top, 4.5)
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes(
        (left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height)
    )
    cax = fig.add_axes(
        (1 - (right - 0.2) / width, bottom / height, 0.22 / width, 1 - (bottom + top) / height)
    )
    font = min(10.0, cell * 72 * 0.85 / (0.6 * annot_chars))
    return fig, ax, cax, (font if font >= 5.0 else 0.0), rotate


def _heatmap_values(cm: np.ndarray, normalized: bool) -> np.ndarray:
    return normalize_rows(cm) if normalized else np.asarray(cm).astype(np.int64)


class ConfusionHeatmapRenderer:
    """The annotated heatmap of one run's class names, redrawn per epoch over a cached background.

    The colour scale is fixed for the run so colours compare across epochs:
    [0, 1] for row-normalised rates, [0, largest class support] for counts
    (the validation set, hence its supports, is the same every epoch).
    Above ``ANNOTATE_MAX_CLASSES`` classes every call draws the large layout.

    ```python
    renderer = ConfusionHeatmapRenderer(class_names, normalized=True)
    png = renderer.render(cm, "Validation confusion matrix, epoch 3/31")
    ```
    """

    def __init__(self, class_names: Sequence[str], normalized: bool = True):
        self.names = [str(n) for n in class_names]
        self.normalized = normalized
        self._blit: _Blitter | None = None
        self._key = None

    def render(self, cm: np.ndarray, title: str) -> bytes:
        counts = np.asarray(cm)
        n = len(self.names)
        if counts.shape != (n, n):
            raise ValueError(f"cm shape {counts.shape} does not match {n} class names")
        vmax = 1.0 if self.normalized else float(max(int(counts.sum(axis=1).max(initial=0)), 1))
        if n > ANNOTATE_MAX_CLASSES:
            if self._blit is None or vmax != self._key:
                self._blit = _LargeHeatmap(self.names, self.normalized, vmax)
                self._key = vmax
            return self._blit.render(counts, title)
        key = (vmax, len(str(int(vmax))))
        if self._blit is None or key != self._key:
            self._build(counts, vmax)
            self._key = key
        self._update(counts, title)
        return self._blit.png()

    def _build(self, counts: np.ndarray, vmax: float) -> None:
        import pandas as pd
        import seaborn as sns

        data = _heatmap_values(counts, self.normalized)
        width_chars = 4 if self.normalized else max(1, len(str(int(vmax))))
        fig, ax, cax, font, rotate = _heatmap_axes(self.names, width_chars)
        sns.heatmap(pd.DataFrame(data, index=self.names, columns=self.names), ax=ax, cbar_ax=cax,
                    annot=font > 0, fmt=".2f" if self.normalized else "d", cmap="Blues",
                    vmin=0.0, vmax=vmax, annot_kws={"fontsize": font})
        ax.set_xlabel("Predicted label")
        ax.set_ylabel("True label")
        title = ax.set_title(" ", fontsize=12)
        if rotate:
            ax.tick_params(axis="x", labelrotation=45)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
                label.set_rotation_mode("anchor")
        else:
            ax.tick_params(axis="x", labelrotation=0)
        ax.tick_params(axis="y", labelrotation=0)
        self._mesh = ax.collections[0]
        self._texts = list(ax.texts)
        self._title = title
        self._blit = _Blitter(fig, [self._mesh, *self._texts, title])

    def _update(self, counts: np.ndarray, title: str) -> None:
        from seaborn.utils import relative_luminance

        data = _heatmap_values(counts, self.normalized)
        self._mesh.set_array(data.ravel())
        self._title.set_text(title)
        if self._texts:
            colors = self._mesh.cmap(self._mesh.norm(data.ravel()))
            for text, value, color in zip(self._texts, data.ravel(), colors, strict=True):
                text.set_text(f"{value:.2f}" if self.normalized else f"{int(value)}")
                text.set_color(".15" if relative_luminance(color) > 0.408 else "w")


def confusion_heatmap(
    cm: np.ndarray,
    class_names: Sequence[str],
    title: str,
    normalized: bool = True,
) -> bytes:
    """Seaborn heatmap of ``cm`` (true rows, predicted columns) as PNG bytes.

    ``normalized`` draws row-normalised rates (".2f", range [0, 1]); otherwise
    raw integer counts. Above ``ANNOTATE_MAX_CLASSES`` classes: the whole matrix
    as an image plus the ``MOST_CONFUSED`` most-confused classes annotated.
    """
    return ConfusionHeatmapRenderer(class_names, normalized).render(cm, title)


class _LargeHeatmap:
    """Above ANNOTATE_MAX_CLASSES: the whole matrix as an image (one block per cell, colour
    bar, no numbers) beside an annotated sub-matrix of the ``k`` classes with the most
    off-diagonal mass. Axes and colour bars are drawn once; each epoch redraws the two
    matrices, the numbers, the chosen classes' names and the title."""

    def __init__(self, names: list[str], normalized: bool, vmax: float, k: int = MOST_CONFUSED):
        from seaborn.utils import relative_luminance

        self._luminance = relative_luminance
        self.names, self.normalized, self.k = names, normalized, min(k, len(names))
        n, k = len(names), self.k
        fig = Figure(figsize=(15.0, 7.6), dpi=DPI)
        self._title = fig.suptitle(" ", fontsize=13, y=0.985)
        ax = fig.add_axes((0.05, 0.1, 0.36, 0.78))
        cax = fig.add_axes((0.42, 0.1, 0.012, 0.78))
        self._image = ax.imshow(np.zeros((n, n)), cmap="Blues", vmin=0.0, vmax=vmax,
                                interpolation="nearest", aspect="equal")
        fig.colorbar(self._image, cax=cax)
        ticks = np.linspace(0, n - 1, min(n, 6)).round().astype(int)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("Predicted class (index)")
        ax.set_ylabel("True class (index)")
        ax.set_title(f"All {n} classes ({'row-normalised' if normalized else 'counts'})", fontsize=11)

        sax = fig.add_axes((0.62, 0.27, 0.33, 0.61))
        scax = fig.add_axes((0.955, 0.27, 0.01, 0.61))
        self._sub = sax.imshow(np.zeros((k, k)), cmap="Blues", vmin=0.0, vmax=vmax,
                               interpolation="nearest", aspect="auto", extent=(0, k, k, 0))
        fig.colorbar(self._sub, cax=scax)
        sax.set_xticks(np.arange(k) + 0.5, [""] * k)
        sax.set_yticks(np.arange(k) + 0.5, [""] * k)
        sax.set_title(f"The {k} most-confused of {n} classes (most off-diagonal mass)", fontsize=11)
        sax.set_xlabel("Predicted label", labelpad=95)
        sax.set_ylabel("True label", labelpad=130)
        font = 8.0 if normalized or vmax < 1000 else 7.0
        self._cells = [[sax.text(j + 0.5, i + 0.5, " ", ha="center", va="center", fontsize=font)
                        for j in range(k)] for i in range(k)]
        self._rows = [sax.text(-0.02, 1.0 - (i + 0.5) / k, " ", ha="right", va="center", fontsize=8,
                               transform=sax.transAxes) for i in range(k)]
        self._cols = [sax.text((j + 0.5) / k, -0.02, " ", ha="right", va="top", fontsize=8, rotation=45,
                               rotation_mode="anchor", transform=sax.transAxes) for j in range(k)]
        dynamic = [self._title, self._image, self._sub, *(t for row in self._cells for t in row),
                   *self._rows, *self._cols]
        self._blit = _Blitter(fig, dynamic)

    def render(self, counts: np.ndarray, title: str) -> bytes:
        data = _heatmap_values(counts, self.normalized)
        self._image.set_data(data)
        chosen = most_confused_classes(counts, self.k)
        sub = data[np.ix_(chosen, chosen)]
        self._sub.set_data(sub)
        colors = self._sub.cmap(self._sub.norm(sub))
        for i in range(self.k):
            for j in range(self.k):
                cell = self._cells[i][j]
                cell.set_text(f"{sub[i, j]:.2f}" if self.normalized else f"{int(sub[i, j])}")
                cell.set_color(".15" if self._luminance(colors[i, j]) > 0.408 else "w")
        for i, c in enumerate(chosen):
            label = f"{short_name(self.names[c])} ({c})"
            self._rows[i].set_text(label)
            self._cols[i].set_text(label)
        self._title.set_text(title)
        return self._blit.png()


# -- prediction grid ---------------------------------------------------------

class PredictionGridRenderer:
    """Grid of images titled "truth : prediction (87%)", green right / red wrong.

    The images are drawn once and kept: the suite shows the same validation
    images every epoch, so only the titles are redrawn. New images rebuild it.
    """

    def __init__(self, class_names: Sequence[str], cols: int = 6,
                 display_transform: DisplayTransform | None = None):
        self.names = [short_name(n, GRID_NAME_WIDTH) for n in class_names]
        self.cols = cols
        self.display_transform = display_transform
        self._blit: _Blitter | None = None
        self._key = None

    def render(self, images, true_idx, pred_idx, confidence, title: str) -> bytes:
        true_idx = np.asarray(true_idx).reshape(-1)
        pred_idx = np.asarray(pred_idx).reshape(-1)
        confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
        images = np.asarray(images)
        k = images.shape[0] if images.ndim >= 3 else -1
        if not (len(true_idx) == len(pred_idx) == len(confidence) == k):
            raise ValueError("images, true_idx, pred_idx and confidence lengths differ")
        key = (images.shape, images.dtype.str, hash(images.tobytes()), len(title))
        if self._blit is None or key != self._key:
            self._build(display_images(images, self.display_transform), title)
            self._key = key
        for text, t, p, c in zip(self._labels, true_idx, pred_idx, confidence, strict=True):
            text.set_text(f"{self.names[int(t)]} : {self.names[int(p)]} ({100.0 * c:.0f}%)")
            text.set_color(RIGHT_COLOR if int(t) == int(p) else WRONG_COLOR)
        self._title.set_text(title)
        return self._blit.png()

    def _build(self, imgs: np.ndarray, title: str) -> None:
        k = imgs.shape[0]
        ncols = max(1, min(self.cols, k))
        nrows = max(1, math.ceil(k / ncols))
        cell_w, cell_h = 2.3, 2.35
        title_w = 0.6 * 13 / 72 * len(title) + 0.4  # rough width of the 13 pt suptitle
        fig = Figure(figsize=(max(cell_w * ncols, title_w), cell_h * nrows + 0.5), dpi=DPI)
        top = 1.0 - 0.5 / (cell_h * nrows + 0.5)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top - 0.01, wspace=0.08, hspace=0.25)
        self._title = fig.suptitle(title, fontsize=13, y=1.0 - 0.12 / (cell_h * nrows + 0.5), va="top")
        self._labels = []
        for i in range(k):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            _show(ax, imgs[i])
            # ax.text instead of set_title: title placement measures tick boxes
            self._labels.append(ax.text(0.5, 1.03, " ", transform=ax.transAxes, ha="center",
                                        va="bottom", fontsize=9))
            ax.set_axis_off()
        self._blit = _Blitter(fig, [self._title, *self._labels])


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
    return PredictionGridRenderer(class_names, cols, display_transform).render(
        images, true_idx, pred_idx, confidence, title)


# -- probability bars --------------------------------------------------------

class ProbabilityBarsRenderer:
    """Per image: the picture labelled "pred 83% (truth)" beside its class-probability bars.

    Up to ``ALL_BARS_MAX_CLASSES`` classes every class has a bar (grey; the
    predicted class red, the true class blue, blue wins) and only the bar
    heights, colours and labels are redrawn per epoch. Above, each image shows
    its ``top_k`` most probable classes and the true class, named, redrawn whole.
    """

    def __init__(self, class_names: Sequence[str], top_k: int = TOP_K,
                 display_transform: DisplayTransform | None = None):
        self.names = [str(n) for n in class_names]
        self.top_k = top_k
        self.display_transform = display_transform
        self._blit: _Blitter | None = None
        self._key = None

    def render(self, images, true_idx, probs, title: str) -> bytes:
        probs = np.asarray(probs, dtype=np.float64)
        true_idx = np.asarray(true_idx).reshape(-1)
        images = np.asarray(images)
        k, n = images.shape[0], len(self.names)
        if probs.shape != (k, n) or len(true_idx) != k:
            raise ValueError(f"probs must be ({k}, {n}) and true_idx length {k}")
        if n > ALL_BARS_MAX_CLASSES:
            return self._top_k(display_images(images, self.display_transform), true_idx, probs, title)
        key = (images.shape, images.dtype.str, hash(images.tobytes()))
        if self._blit is None or key != self._key:
            self._build(display_images(images, self.display_transform))
            self._key = key
        for i in range(k):
            pred, truth = int(np.argmax(probs[i])), int(true_idx[i])
            for c, bar in enumerate(self._bars[i]):
                bar.set_height(probs[i, c])
                bar.set_color("tab:blue" if c == truth else "tab:red" if c == pred else BAR_COLOR)
            self._labels[i].set_text(
                f"{self.names[pred]} {100.0 * probs[i, pred]:.0f}% ({self.names[truth]})")
            self._labels[i].set_color("tab:blue" if pred == truth else "tab:red")
        self._title.set_text(title)
        return self._blit.png()

    def _layout(self, k: int, long_names: bool) -> tuple[Figure, object]:
        row_h = 2.6 if long_names else 2.1
        height = row_h * k + 0.5
        fig = Figure(figsize=(8.0, height), dpi=DPI)
        fig.subplots_adjust(left=0.03, right=0.98, bottom=(0.75 if long_names else 0.45) / height,
                            top=1.0 - 0.55 / height, wspace=0.15,
                            hspace=(0.85 if long_names else 0.55) / row_h * 2)
        self._title = fig.suptitle(" ", fontsize=13, y=1.0 - 0.1 / height, va="top")
        return fig, fig.add_gridspec(k, 2, width_ratios=[1.0, 2.6])

    def _build(self, imgs: np.ndarray) -> None:
        k, n = imgs.shape[0], len(self.names)
        long_names = max((len(s) for s in self.names), default=1) > 2
        fig, grid = self._layout(k, long_names)
        xs = np.arange(n)
        self._bars, self._labels = [], []
        for i in range(k):
            ax_img = fig.add_subplot(grid[i, 0])
            _show(ax_img, imgs[i])
            ax_img.set_xticks([])
            ax_img.set_yticks([])
            # the label as text under the image: an xlabel would be re-laid out per epoch
            self._labels.append(ax_img.text(0.5, -0.04, " ", transform=ax_img.transAxes, ha="center",
                                            va="top", fontsize=10))
            ax_bar = fig.add_subplot(grid[i, 1])
            self._bars.append(list(ax_bar.bar(xs, np.zeros(n), color=BAR_COLOR)))
            ax_bar.set_ylim(0.0, 1.0)
            ax_bar.set_xlim(-0.6, n - 0.4)
            ax_bar.set_xticks(xs)
            ax_bar.set_xticklabels([short_name(s) for s in self.names], rotation=35 if long_names else 0,
                                   ha="right" if long_names else "center", rotation_mode="anchor",
                                   fontsize=9)
            ax_bar.set_yticks([0.0, 0.5, 1.0])
            ax_bar.tick_params(axis="y", labelsize=8)
        dynamic = [self._title, *self._labels, *(bar for bars in self._bars for bar in bars)]
        self._blit = _Blitter(fig, dynamic)

    def _top_k(self, imgs: np.ndarray, true_idx: np.ndarray, probs: np.ndarray, title: str) -> bytes:
        """Above ALL_BARS_MAX_CLASSES: horizontal bars of the top-k classes and the true one.

        Built once per set of images with k + 1 bar slots per image; each epoch
        redraws the bars, their names and the labels over the cached images."""
        key = ("top", imgs.shape, hash(imgs.tobytes()))
        if self._blit is None or key != self._key:
            self._build_top_k(imgs)
            self._key = key
        slots = self.top_k + 1
        for i in range(imgs.shape[0]):
            truth = int(true_idx[i])
            order = list(np.argsort(-probs[i], kind="stable")[: self.top_k])
            if truth not in order:
                order.append(truth)
            pred = int(order[0])
            for j in range(slots):
                bar, label = self._bars[i][j], self._names[i][j]
                if j < len(order):
                    c = order[j]
                    color = "tab:blue" if c == truth else "tab:red" if c == pred else BAR_COLOR
                    bar.set_width(probs[i, c])
                    bar.set_color(color)
                    label.set_text(f"{short_name(self.names[c], 22)} {100 * probs[i, c]:.0f}%"
                                   + (" (true)" if c == truth else ""))
                    label.set_color(color if color != BAR_COLOR else "black")
                else:
                    bar.set_width(0.0)
                    label.set_text("")
            self._labels[i].set_text(f"{100.0 * probs[i, pred]:.0f}% {'right' if pred == truth else 'wrong'}")
            self._labels[i].set_color("tab:blue" if pred == truth else "tab:red")
        self._title.set_text(title)
        return self._blit.png()

    def _build_top_k(self, imgs: np.ndarray) -> None:
        k, slots = imgs.shape[0], self.top_k + 1
        height = 2.1 * k + 0.5
        fig = Figure(figsize=(9.0, height), dpi=DPI)
        fig.subplots_adjust(left=0.02, right=0.97, bottom=0.45 / height, top=1.0 - 0.55 / height,
                            wspace=0.05, hspace=0.55 / 2.1 * 2)
        self._title = fig.suptitle(" ", fontsize=13, y=1.0 - 0.1 / height, va="top")
        grid = fig.add_gridspec(k, 3, width_ratios=[1.0, 1.25, 2.2])
        self._bars, self._names, self._labels = [], [], []
        ys = np.arange(slots)[::-1]
        for i in range(k):
            ax_img = fig.add_subplot(grid[i, 0])
            _show(ax_img, imgs[i])
            ax_img.set_xticks([])
            ax_img.set_yticks([])
            self._labels.append(ax_img.text(0.5, -0.04, " ", transform=ax_img.transAxes, ha="center",
                                            va="top", fontsize=10))
            ax_bar = fig.add_subplot(grid[i, 2])  # the middle column holds the class names
            self._bars.append(list(ax_bar.barh(ys, np.zeros(slots), color=BAR_COLOR)))
            self._names.append([ax_bar.text(-0.02, y, " ", ha="right", va="center", fontsize=9,
                                            transform=ax_bar.get_yaxis_transform()) for y in ys])
            ax_bar.set_yticks([])
            ax_bar.set_ylim(-0.6, slots - 0.4)
            ax_bar.set_xlim(0.0, 1.0)
            ax_bar.set_xticks([0.0, 0.5, 1.0])
            ax_bar.tick_params(axis="x", labelsize=8)
            ax_bar.set_title(f"top {self.top_k} of {len(self.names)} classes, and the true class",
                             fontsize=9)
        dynamic = [self._title, *self._labels, *(a for row in self._bars for a in row),
                   *(a for row in self._names for a in row)]
        self._blit = _Blitter(fig, dynamic)


def probability_bars(
    images: np.ndarray,
    true_idx: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    title: str,
    display_transform: DisplayTransform | None = None,
    top_k: int = TOP_K,
) -> bytes:
    """Per image: picture labelled "pred 83% (truth)" and a class-probability bar chart.

    Bars are grey; the predicted class red, the true class blue (blue wins).
    Above ``ALL_BARS_MAX_CLASSES`` classes only the ``top_k`` classes and the true one.
    """
    return ProbabilityBarsRenderer(class_names, top_k, display_transform).render(
        images, true_idx, probs, title)


# -- per-class recall (many classes) ---------------------------------------------

def per_class_recall_bars(recall: np.ndarray, class_names: Sequence[str], title: str,
                          worst: int = 20) -> bytes:
    """Every class's recall as bars sorted worst first, the ``worst`` lowest named beside them.

    For class counts too large for one scalar per class (used above 30 classes).
    """
    recall = np.asarray(recall, dtype=np.float64)
    names = [str(n) for n in class_names]
    if recall.shape != (len(names),):
        raise ValueError(f"recall must have one value per class ({len(names)}), got {recall.shape}")
    order = np.lexsort((np.arange(len(names)), recall))
    fig = Figure(figsize=(12.0, 5.6), dpi=DPI)
    fig.suptitle(title, fontsize=13, y=0.98)
    ax = fig.add_axes((0.06, 0.12, 0.58, 0.76))
    # one filled step area, not one patch per class (1,000 bars cost ~0.4 s to draw)
    edges = np.arange(len(names) + 1) - 0.5
    ax.stairs(recall[order], edges, fill=True, color="tab:blue")
    shown = min(worst, len(names))
    ax.stairs(recall[order][:shown], edges[: shown + 1], fill=True, color="tab:red")
    ax.axhline(float(recall.mean()) if recall.size else 0.0, color="black", linewidth=1, linestyle="--",
               label=f"mean {recall.mean():.3f}")
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(f"{len(names)} classes, sorted by recall (worst first)")
    ax.set_ylabel("Recall")
    ax.legend(loc="upper left", fontsize=9)
    side = fig.add_axes((0.67, 0.12, 0.31, 0.76))
    side.set_axis_off()
    side.set_title(f"The {shown} worst classes", fontsize=11, loc="left")
    lines = [f"{rank:>2}. {short_name(names[c], 24):<24} {recall[c]:.3f}"
             for rank, c in enumerate(order[:shown], 1)]
    side.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9,
              transform=side.transAxes, color="tab:red")
    return _to_png(fig)
