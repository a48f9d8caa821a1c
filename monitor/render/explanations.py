"""Grad-CAM pictures: each image beside its heat maps, titled "truth : prediction (87%)".

- ``upsample``: heat maps at the feature map's size brought to the image's (bilinear);
- ``rgb``: display images as RGB;
- ``overlay``: heat maps (brought to the image's size) over display images, in the ``jet`` colour
  map at ``ALPHA``;
- ``ExplanationGridRenderer``: items of P panels (the image, then its overlays, each captioned,
  e.g. "why dog?" / "where is cat?"), several items a row, within 1600 x 1200 pixels;
- ``titles``: "truth : prediction (87%)", as the prediction grid's;
- ``map_pngs``: each heat map as an 8-bit grey PNG at the feature map's own size (the form the
  dashboard's data keeps: small, and overlaid by its reader at any size).

Arrays in, PNG bytes out; matplotlib's object API only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from monitor.render.blit import TEXT_CACHE_BYTES, Blitter
from monitor.render.grid import RIGHT_COLOR, WRONG_COLOR
from monitor.render.names import GRID_NAME_WIDTH, short_name
from monitor.render.panels import figure_box, fitted, paste_all, to_rgb8
from monitor.render.png import DPI, encode_png

ALPHA = 0.45  # weight of the heat map's colour over the image
PANEL_IN = 1.5  # inches a panel is wide and high (120 px at DPI 80)
TITLE_IN, CAPTION_IN, HEADER_IN = 0.25, 0.2, 0.45  # an item's title and captions, the picture's title
GAP_IN, PANEL_GAP_IN = 0.25, 0.06  # between items, between an item's panels
MAX_ROWS = 7  # rows of items, so that the picture stays within 1200 pixels high
MAX_PANELS_PER_ROW = 12  # within 1600 pixels wide


def rgb(images: np.ndarray) -> np.ndarray:
    """Display images (N, H, W, C) in [0, 1] as (N, H, W, 3) float32: grey repeated, alpha dropped."""
    images = np.asarray(images, dtype=np.float32)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def overlay(images: np.ndarray, maps: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """(N, H, W, 3) float32 in [0, 1]: display images (N, H, W, C) in [0, 1] blended with their
    heat maps (N, h, w) in [0, 1] through the `jet` colour map."""
    images = rgb(images)
    heat = upsample(np.clip(maps, 0.0, 1.0), images.shape[1], images.shape[2])
    colours = colormaps["jet"](heat)[..., :3].astype(np.float32)
    return np.clip((1.0 - alpha) * images + alpha * colours, 0.0, 1.0)


def upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Maps (..., h, w) bilinearly resized to (..., height, width) (half-pixel centres, as
    `tf.image.resize`), numpy only."""
    maps = np.asarray(maps, dtype=np.float32)
    h, w = maps.shape[-2:]
    if (h, w) == (height, width) or h == 0 or w == 0:
        return maps.copy()

    def axis(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    (r0, r1, fr), (c0, c1, fc) = axis(h, height), axis(w, width)
    rows = maps[..., r0, :] * (1 - fr)[:, None] + maps[..., r1, :] * fr[:, None]
    return rows[..., c0] * (1 - fc) + rows[..., c1] * fc


def map_pngs(maps: np.ndarray) -> list[bytes]:
    """Each map (N, h, w) in [0, 1] as an 8-bit grey PNG of h x w pixels (value x 255)."""
    grey = (np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return [encode_png(m) for m in grey]


def titles(true_idx, pred_idx, confidence, class_names: Sequence[str],
           positive: int | None = None) -> list[str]:
    """"truth : prediction (87%)" per item, as the prediction grid titles its images; with
    `positive` (a binary head) `confidence` is p(positive), "cat : dog (p(dog) 0.83)"."""
    shortened: dict[int, str] = {}

    def name(index) -> str:  # only the classes shown: a 1,000-class head shows a few dozen
        index = int(index)
        if index not in shortened:
            shortened[index] = short_name(class_names[index], GRID_NAME_WIDTH)
        return shortened[index]

    out = []
    for t, p, c in zip(np.asarray(true_idx).reshape(-1), np.asarray(pred_idx).reshape(-1),
                       np.asarray(confidence, dtype=np.float64).reshape(-1), strict=True):
        shown = f"p({name(positive)}) {c:.2f}" if positive is not None else f"{100.0 * c:.0f}%"
        out.append(f"{name(t)} : {name(p)} ({shown})")
    return out


def items_per_row(n: int, panels: int, preferred: int) -> int:
    """Items a row: `preferred`, more when `n` items would need more than MAX_ROWS rows."""
    most = max(1, MAX_PANELS_PER_ROW // panels)
    return max(1, min(most, max(preferred, math.ceil(n / MAX_ROWS))))


def max_items(panels: int) -> int:
    """The most items one picture shows."""
    return MAX_ROWS * max(1, MAX_PANELS_PER_ROW // panels)


class ExplanationGridRenderer:
    """Items of `panels` panels (the image, then its heat maps), titled and captioned.

    Kept by a callback for a run: the figure is built once per layout (item count, image
    size, title length) and per epoch only the pictures (pasted by pixel, no Axes) and texts are
    redrawn.
    """

    def __init__(self, panels: int, per_row: int, text_cache_bytes: int = TEXT_CACHE_BYTES):
        if panels < 1 or per_row < 1:
            raise ValueError(f"panels and per_row must be positive, got {panels} and {per_row}")
        self.panels = panels
        self.per_row = per_row
        self.text_cache_bytes = text_cache_bytes
        self._blit: Blitter | None = None
        self._key = None

    def render(self, pictures: np.ndarray, titles: Sequence[str], right: Sequence[bool],
               captions: Sequence[Sequence[str]], title: str) -> bytes:
        """`pictures` (N, panels, H, W, 3) in [0, 1] (at most `max_items(panels)` items);
        `titles`, `right` (green / red title) and `captions` (N, panels) per item."""
        pictures = np.asarray(pictures, dtype=np.float32)
        n = pictures.shape[0]
        if pictures.ndim != 5 or pictures.shape[1] != self.panels or not 0 < n <= max_items(self.panels):
            raise ValueError(f"pictures must be (1..{max_items(self.panels)}, {self.panels}, H, W, 3), "
                             f"got {pictures.shape}")
        if not (len(titles) == len(right) == len(captions) == n):
            raise ValueError("pictures, titles, right and captions lengths differ")
        key = (pictures.shape, len(title))
        if self._blit is None or key != self._key:
            self._build(n, pictures.shape[2:4], title)
            self._key = key
        self._pictures = to_rgb8(pictures.reshape(-1, *pictures.shape[2:]))
        for i in range(n):
            for p in range(self.panels):
                self._captions[i * self.panels + p].set_text(captions[i][p])
            self._titles[i].set_text(titles[i])
            self._titles[i].set_color(RIGHT_COLOR if right[i] else WRONG_COLOR)
        self._title.set_text(title)
        return self._blit.png()

    def _build(self, n: int, size: tuple[int, int], title: str) -> None:
        per_row = items_per_row(n, self.panels, self.per_row)
        rows = math.ceil(n / per_row)
        row_in = TITLE_IN + PANEL_IN + CAPTION_IN
        item_in = self.panels * PANEL_IN + (self.panels - 1) * PANEL_GAP_IN
        width = max(per_row * item_in + (per_row - 1) * GAP_IN + 0.2, 0.6 * 13 / 72 * len(title) + 0.4)
        height = HEADER_IN + rows * row_in + 0.1
        fig = Figure(figsize=(width, height), dpi=DPI)
        self._title = fig.suptitle(title, fontsize=13, y=1.0 - 0.08 / height, va="top")
        self._boxes, self._captions, self._titles = [], [], []
        for i in range(n):
            row, col = divmod(i, per_row)
            left = 0.1 + col * (item_in + GAP_IN)
            top = height - HEADER_IN - row * row_in
            self._titles.append(fig.text((left + item_in / 2) / width, (top - 0.02) / height, " ",
                                         ha="center", va="top", fontsize=9))
            for p in range(self.panels):
                x0, y0 = left + p * (PANEL_IN + PANEL_GAP_IN), top - TITLE_IN - PANEL_IN
                box = figure_box(fig, (x0 / width, y0 / height, PANEL_IN / width, PANEL_IN / height))
                self._boxes.append(fitted(box, *size))
                self._captions.append(fig.text((x0 + PANEL_IN / 2) / width, (y0 - 0.02) / height, " ",
                                               ha="center", va="top", fontsize=7))
        dynamic = [self._title, *self._titles, *self._captions]
        self._blit = Blitter(fig, dynamic, self.text_cache_bytes,
                             paint=lambda pixels: paste_all(pixels, self._boxes, self._pictures))
