"""Above ``ANNOTATE_MAX_CLASSES`` classes: the whole confusion matrix beside its most-confused part."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from monitor.limits import ANNOTATE_MAX_CLASSES, MOST_CONFUSED
from monitor.metrics import most_confused_classes
from monitor.render.blit import TEXT_CACHE_BYTES, Blitter
from monitor.render.cells import annotation, heatmap_values, text_color
from monitor.render.names import LABEL_NAME_WIDTH, short_name
from monitor.render.png import DPI

OVERVIEW_PX = 520  # side of the whole-matrix image above ANNOTATE_MAX_CLASSES, in pixels
WIDTH, HEIGHT = 16.0, 8.4  # inches


def _max_pool(data: np.ndarray, block: int) -> np.ndarray:
    """Each ``block`` x ``block`` square of ``data`` as its maximum (zero-padded at the end)."""
    if block <= 1:
        return data
    n = data.shape[0]
    m = -(-n // block)
    padded = np.zeros((m * block, m * block), dtype=np.float64)
    padded[:n, :n] = data
    return padded.reshape(m, block, m, block).max(axis=(1, 3))


class LargeHeatmap:
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
        self.names, self.normalized = names, normalized
        self.k = max(1, min(k, len(names), ANNOTATE_MAX_CLASSES))
        self.block = -(-len(names) // OVERVIEW_PX)
        fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
        self._title = fig.suptitle(" ", fontsize=13, y=0.985)
        self._draw_overview(fig, vmax)
        self._draw_sub_matrix(fig, vmax)
        dynamic = [self._title, self._image, self._sub, *(t for row in self._cells for t in row),
                   *self._rows, *self._cols]
        self._blit = Blitter(fig, dynamic, text_cache_bytes)

    def _draw_overview(self, fig: Figure, vmax: float) -> None:
        """The whole matrix (left), square-root colour scale, pooled above OVERVIEW_PX classes."""
        from matplotlib.colors import PowerNorm

        n = len(self.names)
        m = -(-n // self.block)
        over = OVERVIEW_PX / DPI
        ax = fig.add_axes((0.6 / WIDTH, 0.7 / HEIGHT, over / WIDTH, over / HEIGHT))
        cax = fig.add_axes(((0.7 + over) / WIDTH, 0.7 / HEIGHT, 0.15 / WIDTH, over / HEIGHT))
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
        ax.set_title(f"All {n} classes, {'row-normalised' if self.normalized else 'counts'}\n"
                     f"(square-root colour scale{pooled})", fontsize=10)

    def _draw_sub_matrix(self, fig: Figure, vmax: float) -> None:
        """The annotated sub-matrix of the k most-confused classes (right), its names and numbers."""
        n, k = len(self.names), self.k
        label_in = 0.6 * 8 / 72 * (LABEL_NAME_WIDTH + 7)  # "name… (123)" at 8 pt
        left = 7.8 + label_in + 0.3  # after the colour bar's ticks, the row names and "True label"
        side = min(WIDTH - 0.8 - left, HEIGHT - 1.0 - (0.72 * label_in + 0.45), 0.6 * k)
        bottom = HEIGHT - 1.0 - side
        sax = fig.add_axes((left / WIDTH, bottom / HEIGHT, side / WIDTH, side / HEIGHT))
        scax = fig.add_axes(((left + side + 0.1) / WIDTH, bottom / HEIGHT, 0.15 / WIDTH, side / HEIGHT))
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
        chars = 4 if self.normalized else len(str(int(vmax)))
        font = max(5.0, min(8.0, 0.85 * cell_pt / (0.6 * chars)))
        self._cells = [[sax.text(j + 0.5, i + 0.5, " ", ha="center", va="center", fontsize=font)
                        for j in range(k)] for i in range(k)]
        self._rows = [sax.text(-0.02, 1.0 - (i + 0.5) / k, " ", ha="right", va="center", fontsize=8,
                               transform=sax.transAxes) for i in range(k)]
        self._cols = [sax.text((j + 0.5) / k, -0.02, " ", ha="right", va="top", fontsize=8, rotation=45,
                               rotation_mode="anchor", transform=sax.transAxes) for j in range(k)]

    def render(self, counts: np.ndarray, title: str) -> bytes:
        data = heatmap_values(counts, self.normalized)
        self._image.set_data(_max_pool(data, self.block))
        chosen = most_confused_classes(counts, self.k)
        sub = data[np.ix_(chosen, chosen)]
        self._sub.set_data(sub)
        colors = self._sub.cmap(self._sub.norm(sub))
        for i in range(self.k):
            for j in range(self.k):
                cell = self._cells[i][j]
                cell.set_text(annotation(sub[i, j], self.normalized))
                cell.set_color(text_color(colors[i, j]))
        for i, c in enumerate(chosen):
            label = f"{short_name(self.names[c], LABEL_NAME_WIDTH)} ({c})"
            self._rows[i].set_text(label)
            self._cols[i].set_text(label)
        self._title.set_text(title)
        return self._blit.png()
