"""Render metrics and predictions to PNG bytes (arrays in, PNG bytes out).

Only matplotlib's object API is used (``Figure`` + Agg), so no figure is ever
registered with pyplot and nothing accumulates between calls.

Each picture has a renderer class that a callback holds for a whole run
(``ConfusionHeatmapRenderer``, ``PredictionGridRenderer``,
``ProbabilityBarsRenderer``). It draws the parts that do not change between
epochs (axes, tick labels, colour bars, the sample images) once, keeps them as a
background, and per epoch draws only what changed (cells and numbers, titles,
bars) over it, pasting texts it has drawn before over the same pixels. A reused
renderer gives the same PNG bytes as a fresh one; it rebuilds itself when its
input changes (other images, a new largest class support). The pure functions
(``confusion_heatmap``, ``prediction_grid``, ``probability_bars``) build a fresh
renderer per call; ``per_class_recall_bars`` is drawn whole.

Scale: up to ``ANNOTATE_MAX_CLASSES`` classes the heatmap is the annotated
seaborn heatmap; above, the whole matrix as an image beside the annotated
sub-matrix of the ``MOST_CONFUSED`` most-confused classes. Above
``ALL_BARS_MAX_CLASSES`` the probability bars show the ``TOP_K`` classes and the
true one. Every picture stays within 1600 x 1200 pixels whatever the class count.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
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
NAME_WIDTH = 14  # characters of a class name under the (up to 10) probability bars
GRID_NAME_WIDTH = 11  # in grid titles, which hold two names in a 2.3-inch cell
HEATMAP_NAME_WIDTH = 24  # tick labels of the annotated heatmap (up to ANNOTATE_MAX_CLASSES)
LABEL_NAME_WIDTH = 20  # sub-matrix ticks, top-k bar names, worst-recall list
TEXT_CACHE_BYTES = 4 * 2**20  # pixels of drawn texts a renderer keeps (LRU), to paste instead of drawing
OVERVIEW_PX = 520  # side of the whole-matrix image above ANNOTATE_MAX_CLASSES, in pixels

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
    """A figure whose `dynamic` artists are redrawn over a cached background of the rest.

    Text is most of the drawing, and most texts come back from epoch to epoch (a
    heatmap's "0.00" cells, a grid's titles), so the pixels of each drawn text are
    kept (least recently used first out, ``text_cache_bytes`` in all): a text whose
    string and colour, and the pixels under it, are those of an earlier draw is
    pasted instead of drawn. The pixels are the same either way.
    """

    def __init__(self, fig: Figure, dynamic: list, text_cache_bytes: int = TEXT_CACHE_BYTES):
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.dynamic = [(artist, isinstance(artist, Text) and text_cache_bytes > 0) for artist in dynamic]
        self.text_cache: dict = {}
        self.text_cache_bytes = text_cache_bytes
        self._cached_bytes = 0
        for artist in dynamic:
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def png(self) -> bytes:
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        pixels = np.asarray(self.canvas.buffer_rgba())
        for artist, cached in self.dynamic:
            if cached:
                self._draw_text(artist, renderer, pixels)
            else:
                artist.draw(renderer)
        return _canvas_png(self.canvas)

    def _draw_text(self, text: Text, renderer, pixels: np.ndarray) -> None:
        """Draw ``text``, or paste its pixels from an earlier draw over the same pixels."""
        string = text.get_text()
        if not string.strip() or not text.get_visible():
            text.draw(renderer)
            return
        box = text.get_window_extent(renderer)
        height, width = pixels.shape[:2]
        x0, x1 = max(int(box.x0) - 2, 0), min(int(math.ceil(box.x1)) + 2, width)
        r0, r1 = max(height - int(math.ceil(box.y1)) - 2, 0), min(height - int(box.y0) + 2, height)
        region = pixels[r0:r1, x0:x1]
        if region.nbytes == 0 or region.nbytes > self.text_cache_bytes // 64:  # titles change anyway
            text.draw(renderer)
            return
        key = (id(text), string, str(text.get_color()), r0, x0, region.shape,
               hashlib.blake2b(region.tobytes(), digest_size=16).digest())
        patch = self.text_cache.pop(key, None)
        if patch is None:
            text.draw(renderer)
            patch = region.copy()
            self._cached_bytes += patch.nbytes
            while self._cached_bytes > self.text_cache_bytes:
                self._cached_bytes -= self.text_cache.pop(next(iter(self.text_cache))).nbytes
        else:
            region[...] = patch
        self.text_cache[key] = patch  # most recently used last


# -- names and images --------------------------------------------------------

def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut to at most ``width`` characters, ending in an ellipsis, when longer
    (separators left dangling before the ellipsis are dropped: "airplane…", not "airplane, …")."""
    name = str(name)
    if len(name) <= width:
        return name
    if width < 1:
        return ""
    head = name[: width - 1]
    return (head.rstrip(" ,;:-_(/") or head) + "…"


# keras.applications "caffe" preprocessing: BGR order, ImageNet mean pixel subtracted, 0..255 scale
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
RANGE_TOLERANCE = 0.02  # fraction of a range's span that values may overshoot it (resizing, rounding)
STANDARDISED_TOLERANCE = 0.1  # |mean| and |std - 1| below this read as "standardised"


def _standardised(mean: np.ndarray, std: np.ndarray) -> bool:
    tol = STANDARDISED_TOLERANCE
    return bool(np.all(np.abs(mean) < tol) and np.all(np.abs(std - 1.0) < tol))


def _to_unit_range(x: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Map a float batch (K, H, W, C) to [0, 1], deciding from the whole batch.

    In order: [0, 1] is kept; [-1, 1] is shifted; [0, 255] is divided by 255;
    keras.applications "caffe" input (BGR, mean pixel subtracted) is undone and
    turned back to RGB; anything else is stretched from its minimum to its
    maximum, per channel when each channel has zero mean and unit variance, else
    as a whole when the whole batch has (or when every channel spans the same
    range), else per channel (fixed per-channel constants, as ImageNet's).
    Limitation: a global affine map other than standardisation, of a batch whose
    channels span different ranges, is stretched per channel.
    """
    values = x[finite]
    if values.size == 0:
        return x
    lo, hi = float(values.min()), float(values.max())
    tol = RANGE_TOLERANCE
    if lo >= -tol and hi <= 1.0 + tol:
        return x
    if lo >= -1.0 - 2.0 * tol and hi <= 1.0 + 2.0 * tol:
        return (x + 1.0) / 2.0
    if 2.0 < hi <= 255.0 * (1.0 + tol) and lo >= -tol * hi:
        return x / 255.0
    channels = x.shape[-1]
    masked = np.where(finite, x, np.nan)
    c_lo = np.nanmin(masked, axis=(0, 1, 2))
    c_hi = np.nanmax(masked, axis=(0, 1, 2))
    if (channels == 3 and hi - lo > 32.0 and lo < -tol * 255.0
            and np.all(c_lo >= -CAFFE_BGR_MEAN - tol * 255.0)
            and np.all(c_hi <= 255.0 - CAFFE_BGR_MEAN + tol * 255.0)):
        return ((x + CAFFE_BGR_MEAN) / 255.0)[..., ::-1]
    span = hi - lo
    per_channel = channels > 1
    each = (np.nanmean(masked, axis=(0, 1, 2)), np.nanstd(masked, axis=(0, 1, 2)))
    if per_channel and not _standardised(*each):
        same_ranges = np.all(np.abs(c_lo - lo) <= 0.05 * span) and np.all(np.abs(c_hi - hi) <= 0.05 * span)
        per_channel = not (same_ranges or _standardised(np.float64(values.mean()), np.float64(values.std())))
    if not per_channel:
        return (x - lo) / (span if span > 0 else 1.0)
    c_span = c_hi - c_lo
    return (x - c_lo) / np.where(c_span > 0, c_span, 1.0)


def display_images(images: np.ndarray, transform: DisplayTransform | None = None) -> np.ndarray:
    """Images (K, H, W[, C]) as float32 in [0, 1], mapped as the eye expects.

    ``transform`` (yours, e.g. undoing your normalisation) wins when given: it gets
    the images and returns uint8 or floats in [0, 1]. Otherwise uint8 is divided
    by 255 and a float batch is mapped by ``_to_unit_range``, one mapping for the
    whole batch so colours agree between images. NaN and infinities show as 0.
    """
    arr = np.asarray(images if transform is None else transform(np.asarray(images)))
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (K, H, W, C), got {np.shape(images)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    out = arr.astype(np.float32)
    finite = np.isfinite(out)
    if transform is None and out.size:
        out = _to_unit_range(out, finite)
    return np.clip(np.where(finite, out, 0.0), 0.0, 1.0).astype(np.float32)


_display_images = display_images  # the name older callers use


def _show(ax: Axes, image: np.ndarray) -> None:
    """Draw one (H, W, C) image in [0, 1]; single channel in grey."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image[..., :3], interpolation="nearest")


# -- confusion heatmap -------------------------------------------------------

def _text_inches(string: str, size: float) -> float:
    """Width of ``string`` in inches at ``size`` points (DejaVu Sans, no renderer needed)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    return text_to_path.get_text_width_height_descent(string, FontProperties(size=size), ismath=False)[0] / 72


def _heatmap_axes(names: Sequence[str], annot_chars: int) -> tuple[Figure, Axes, Axes, float, bool]:
    """Figure, heatmap axes, colorbar axes, annotation font size (0: none) and
    whether x tick labels should be rotated (names longer than 3 characters).

    Margins are computed in inches from the label lengths instead of using a
    layout engine, which would cost ~60 ms per render. Cells shrink from 23
    classes on so that 30 classes stay within about 1300 x 1100 pixels.
    """
    n = max(len(names), 1)
    label_chars = max((len(s) for s in names), default=1)
    char_in = 0.6 * 10 / 72  # approximate width of a 10 pt character
    label_in = max((_text_inches(s, 10) for s in names), default=0.0)  # measured, for long names
    left = max(0.5 + label_chars * char_in, label_in + 0.4)
    rotate = label_chars > 3
    bottom = 0.45 + (0.65 * (label_chars * char_in + 0.15) if rotate else 0.2)
    if rotate:
        bottom = max(bottom, 0.707 * (label_in + 0.14) + 0.42)
    top = 0.45
    right = max(1.0, 0.62 + _text_inches("8" * annot_chars if annot_chars > 4 else "0.0", 10))
    cell = min(0.55, 12.8 / n)
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


def _annotation(value: float, normalized: bool) -> str:
    return f"{value:.2f}" if normalized else f"{int(value)}"


def _text_color(rgba) -> str:
    """Seaborn's annotation colour: dark on light cells, white on dark ones."""
    from seaborn.utils import relative_luminance

    return ".15" if relative_luminance(rgba) > 0.408 else "w"


class ConfusionHeatmapRenderer:
    """The confusion heatmap of one run's class names, redrawn per epoch over a cached background.

    The colour scale is fixed for the run so colours compare across epochs:
    [0, 1] for row-normalised rates, [0, largest class support] for counts
    (the validation set, hence its supports, is the same every epoch; a new
    largest support rebuilds the figure). Up to ``ANNOTATE_MAX_CLASSES`` classes:
    the annotated seaborn heatmap. Above: the whole matrix as an image beside the
    annotated sub-matrix of the ``most_confused`` classes (see ``_LargeHeatmap``).
    ``text_cache_bytes`` bounds the drawn texts kept for pasting (0: none); every
    renderer takes it.

    ```python
    renderer = ConfusionHeatmapRenderer(class_names, normalized=True)
    png = renderer.render(cm, "Validation confusion matrix, epoch 3/31")
    ```
    """

    def __init__(self, class_names: Sequence[str], normalized: bool = True,
                 most_confused: int = MOST_CONFUSED, *, text_cache_bytes: int = TEXT_CACHE_BYTES):
        self.names = [str(n) for n in class_names]
        self.normalized = normalized
        self.most_confused = most_confused
        self.text_cache_bytes = text_cache_bytes
        self._blit: _Blitter | _LargeHeatmap | None = None
        self._key = None

    def render(self, cm: np.ndarray, title: str) -> bytes:
        counts = np.asarray(cm)
        n = len(self.names)
        if counts.shape != (n, n):
            raise ValueError(f"cm shape {counts.shape} does not match {n} class names")
        vmax = 1.0 if self.normalized else float(max(int(counts.sum(axis=1).max(initial=0)), 1))
        if n > ANNOTATE_MAX_CLASSES:
            if not isinstance(self._blit, _LargeHeatmap) or vmax != self._key:
                self._blit = _LargeHeatmap(self.names, self.normalized, vmax, self.most_confused,
                                           self.text_cache_bytes)
                self._key = vmax
            return self._blit.render(counts, title)
        key = (vmax, len(str(int(vmax))))
        if not isinstance(self._blit, _Blitter) or key != self._key:
            self._build(counts, vmax)
            self._key = key
        self._update(counts, title)
        return self._blit.png()

    def _build(self, counts: np.ndarray, vmax: float) -> None:
        import pandas as pd
        import seaborn as sns

        names = [short_name(n, HEATMAP_NAME_WIDTH) for n in self.names]
        data = _heatmap_values(counts, self.normalized)
        width_chars = 4 if self.normalized else max(1, len(str(int(vmax))))
        fig, ax, cax, font, rotate = _heatmap_axes(names, width_chars)
        sns.heatmap(pd.DataFrame(data, index=names, columns=names), ax=ax, cbar_ax=cax,
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
        self._blit = _Blitter(fig, [self._mesh, *self._texts, title], self.text_cache_bytes)

    def _update(self, counts: np.ndarray, title: str) -> None:
        data = _heatmap_values(counts, self.normalized)
        self._mesh.set_array(data.ravel())
        self._title.set_text(title)
        if self._texts:
            colors = self._mesh.cmap(self._mesh.norm(data.ravel()))
            for text, value, color in zip(self._texts, data.ravel(), colors, strict=True):
                text.set_text(_annotation(value, self.normalized))
                text.set_color(_text_color(color))


def confusion_heatmap(
    cm: np.ndarray,
    class_names: Sequence[str],
    title: str,
    normalized: bool = True,
    most_confused: int = MOST_CONFUSED,
) -> bytes:
    """Seaborn heatmap of ``cm`` (true rows, predicted columns) as PNG bytes.

    ``normalized`` draws row-normalised rates (".2f", range [0, 1]); otherwise
    raw integer counts. Above ``ANNOTATE_MAX_CLASSES`` classes: the whole matrix
    as an image plus the ``most_confused`` most-confused classes annotated.
    """
    return ConfusionHeatmapRenderer(class_names, normalized, most_confused, text_cache_bytes=0).render(
        cm, title)  # one draw: nothing to paste


def _max_pool(data: np.ndarray, block: int) -> np.ndarray:
    """Each ``block`` x ``block`` square of ``data`` as its maximum (zero-padded at the end)."""
    if block <= 1:
        return data
    n = data.shape[0]
    m = -(-n // block)
    padded = np.zeros((m * block, m * block), dtype=np.float64)
    padded[:n, :n] = data
    return padded.reshape(m, block, m, block).max(axis=(1, 3))


class _LargeHeatmap:
    """Above ANNOTATE_MAX_CLASSES: the whole matrix as an image beside an annotated sub-matrix.

    The whole matrix gets one block of pixels per cell, or, above ``OVERVIEW_PX``
    classes, one pixel per square of cells holding their maximum, so that no
    confusion disappears; its colour scale is a square root, so that rare
    confusions show. The sub-matrix holds the ``k`` classes with the most
    off-diagonal mass (``metrics.most_confused_classes``), most first, named, on
    the linear scale of the small heatmap. Axes and colour bars are drawn once;
    each epoch redraws the two matrices, the numbers, the names and the title.
    """

    def __init__(self, names: list[str], normalized: bool, vmax: float, k: int = MOST_CONFUSED,
                 text_cache_bytes: int = TEXT_CACHE_BYTES):
        from matplotlib.colors import PowerNorm

        self.names, self.normalized = names, normalized
        self.k = max(1, min(k, len(names), ANNOTATE_MAX_CLASSES))
        n, k = len(names), self.k
        self.block = -(-n // OVERVIEW_PX)
        m = -(-n // self.block)
        width, height = 16.0, 8.4
        fig = Figure(figsize=(width, height), dpi=DPI)
        self._title = fig.suptitle(" ", fontsize=13, y=0.985)
        over = OVERVIEW_PX / DPI
        ax = fig.add_axes((0.6 / width, 0.7 / height, over / width, over / height))
        cax = fig.add_axes(((0.7 + over) / width, 0.7 / height, 0.15 / width, over / height))
        self._image = ax.imshow(np.zeros((m, m)), cmap="Blues", norm=PowerNorm(0.5, vmin=0.0, vmax=vmax),
                                interpolation="nearest", aspect="auto",
                                extent=(-0.5, m * self.block - 0.5, m * self.block - 0.5, -0.5))
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        fig.colorbar(self._image, cax=cax)
        cax.tick_params(labelsize=8)
        ax.set_xlabel("Predicted class (index)")
        ax.set_ylabel("True class (index)")
        pooled = f"; a pixel is the max of {self.block}x{self.block} cells" if self.block > 1 else ""
        ax.set_title(f"All {n} classes, {'row-normalised' if normalized else 'counts'}\n"
                     f"(square-root colour scale{pooled})", fontsize=10)

        label_in = 0.6 * 8 / 72 * (LABEL_NAME_WIDTH + 7)  # "name… (123)" at 8 pt
        left = 7.8 + label_in + 0.3  # after the colour bar's ticks, the row names and "True label"
        side = min(width - 0.8 - left, height - 1.0 - (0.72 * label_in + 0.45), 0.6 * k)
        bottom = height - 1.0 - side
        sub_w = sub_h = side
        sax = fig.add_axes((left / width, bottom / height, sub_w / width, sub_h / height))
        scax = fig.add_axes(((left + sub_w + 0.1) / width, bottom / height, 0.15 / width, sub_h / height))
        self._sub = sax.imshow(np.zeros((k, k)), cmap="Blues", vmin=0.0, vmax=vmax,
                               interpolation="nearest", aspect="auto", extent=(0, k, k, 0))
        fig.colorbar(self._sub, cax=scax)
        scax.tick_params(labelsize=8)
        sax.set_xticks(np.arange(k) + 0.5, [""] * k)
        sax.set_yticks(np.arange(k) + 0.5, [""] * k)
        sax.set_title(f"{k} most-confused of {n} classes (most off-diagonal mass)", fontsize=11)
        sax.set_xlabel("Predicted label", labelpad=0.72 * label_in * 72 + 4)
        sax.set_ylabel("True label", labelpad=label_in * 72 + 4)
        cell_pt = side / k * 72
        font = max(5.0, min(8.0, 0.85 * cell_pt / (0.6 * (4 if normalized else len(str(int(vmax)))))))
        self._cells = [[sax.text(j + 0.5, i + 0.5, " ", ha="center", va="center", fontsize=font)
                        for j in range(k)] for i in range(k)]
        self._rows = [sax.text(-0.02, 1.0 - (i + 0.5) / k, " ", ha="right", va="center", fontsize=8,
                               transform=sax.transAxes) for i in range(k)]
        self._cols = [sax.text((j + 0.5) / k, -0.02, " ", ha="right", va="top", fontsize=8, rotation=45,
                               rotation_mode="anchor", transform=sax.transAxes) for j in range(k)]
        dynamic = [self._title, self._image, self._sub, *(t for row in self._cells for t in row),
                   *self._rows, *self._cols]
        self._blit = _Blitter(fig, dynamic, text_cache_bytes)

    def render(self, counts: np.ndarray, title: str) -> bytes:
        data = _heatmap_values(counts, self.normalized)
        self._image.set_data(_max_pool(data, self.block))
        chosen = most_confused_classes(counts, self.k)
        sub = data[np.ix_(chosen, chosen)]
        self._sub.set_data(sub)
        colors = self._sub.cmap(self._sub.norm(sub))
        for i in range(self.k):
            for j in range(self.k):
                cell = self._cells[i][j]
                cell.set_text(_annotation(sub[i, j], self.normalized))
                cell.set_color(_text_color(colors[i, j]))
        for i, c in enumerate(chosen):
            label = f"{short_name(self.names[c], LABEL_NAME_WIDTH)} ({c})"
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
                 display_transform: DisplayTransform | None = None, *,
                 text_cache_bytes: int = TEXT_CACHE_BYTES, images_change: bool = False):
        self.names = [short_name(n, GRID_NAME_WIDTH) for n in class_names]
        self.cols = cols
        self.display_transform = display_transform
        self.text_cache_bytes = text_cache_bytes
        # True: new images each call (the most confident mistakes), redrawn over the cached
        # frame like the titles; False: the same images every epoch, kept in the background.
        self.images_change = images_change
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
        content = 0 if self.images_change else hash(images.tobytes())
        key = (images.shape, images.dtype.str, content, len(title))
        shown = display_images(images, self.display_transform) if self.images_change else None
        if self._blit is None or key != self._key:
            self._build(display_images(images, self.display_transform) if shown is None else shown, title)
            self._key = key
        elif shown is not None:
            for artist, image in zip(self._images, shown, strict=True):
                artist.set_data(image[..., 0] if image.shape[-1] == 1 else image[..., :3])
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
        self._images = []
        for i in range(k):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            _show(ax, imgs[i])
            self._images.append(ax.images[0])
            # ax.text instead of set_title: title placement measures tick boxes
            self._labels.append(ax.text(0.5, 1.03, " ", transform=ax.transAxes, ha="center",
                                        va="bottom", fontsize=9))
            ax.set_axis_off()
        dynamic = [*(self._images if self.images_change else []), self._title, *self._labels]
        self._blit = _Blitter(fig, dynamic, self.text_cache_bytes)


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


# -- probability bars --------------------------------------------------------

class ProbabilityBarsRenderer:
    """Per image: the picture labelled "pred 83% (truth)" beside its class-probability bars.

    Up to ``ALL_BARS_MAX_CLASSES`` classes every class has a bar (grey; the
    predicted class red, the true class blue, blue wins) and only the bar
    heights, colours and labels are redrawn per epoch. Above, each image shows
    its ``top_k`` most probable classes and the true class, named, redrawn whole.
    """

    def __init__(self, class_names: Sequence[str], top_k: int = TOP_K,
                 display_transform: DisplayTransform | None = None, *,
                 text_cache_bytes: int = TEXT_CACHE_BYTES):
        self.names = [str(n) for n in class_names]
        self.top_k = top_k
        self.display_transform = display_transform
        self.text_cache_bytes = text_cache_bytes
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
        self._blit = _Blitter(fig, dynamic, self.text_cache_bytes)

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
                bar.set_visible(j < len(order))  # a hidden bar, not one of width 0: Agg draws those
                if j < len(order):
                    c = order[j]
                    color = "tab:blue" if c == truth else "tab:red" if c == pred else BAR_COLOR
                    bar.set_width(probs[i, c])
                    bar.set_color(color)
                    name = short_name(self.names[c], LABEL_NAME_WIDTH)
                    label.set_text(f"{name} {100 * probs[i, c]:.0f}%" + (" (true)" if c == truth else ""))
                    label.set_color(color if color != BAR_COLOR else "black")
                else:
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
        self._blit = _Blitter(fig, dynamic, self.text_cache_bytes)


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
    return ProbabilityBarsRenderer(class_names, top_k, display_transform, text_cache_bytes=0).render(
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
    # one filled step area, not one patch per class (1,000 bars cost ~0.4 s to draw); fill_between,
    # as its polygon's data limits are cheap to find, unlike a stairs patch's (~35 ms at 1,000)
    edges = np.arange(len(names) + 1) - 0.5
    heights = np.append(recall[order], recall[order][-1:])
    ax.fill_between(edges, heights, step="post", color="tab:blue", linewidth=0)
    shown = min(max(worst, 0), len(names))
    if shown:
        ax.fill_between(edges[: shown + 1], heights[: shown + 1], step="post", color="tab:red", linewidth=0)
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
    labels = [f"{short_name(names[c], LABEL_NAME_WIDTH)} ({c})" for c in order[:shown]]
    lines = [f"{rank:>2}. {label:<{LABEL_NAME_WIDTH + 7}} {recall[c]:.3f}"
             for rank, (label, c) in enumerate(zip(labels, order[:shown], strict=True), 1)]
    side.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9,
              transform=side.transAxes, color="tab:red")
    return _to_png(fig)


# -- training curves ---------------------------------------------------------

def training_curves(histories: dict[str, dict[str, Sequence[float]]], title: str) -> bytes:
    """Training (solid) and validation (dashed) loss and accuracy per run, epochs on x.

    ``histories``: run label -> Keras history (``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``; missing keys are skipped). One colour per run, shared axes,
    as the references compare their models.
    """
    fig = Figure(figsize=(12.0, 4.8), dpi=DPI)
    fig.suptitle(title, fontsize=13, y=0.98)
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.84, wspace=0.22)
    colors = [f"C{i % 10}" for i in range(len(histories))]
    for ax, metric, label in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        for (run, history), color in zip(histories.items(), colors, strict=True):
            for key, style, part in ((metric, "-", "training"), (f"val_{metric}", "--", "validation")):
                values = [np.nan if v is None else float(v) for v in history.get(key) or []]
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    ax.plot(epochs, values, style, color=color, linewidth=1.6, label=f"{run} ({part})")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.lines:
            ax.legend(fontsize=8, loc="best")
    return _to_png(fig)
