"""The confusion heatmap: annotated up to ``ANNOTATE_MAX_CLASSES`` classes, else ``LargeHeatmap``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from monitor.limits import ANNOTATE_MAX_CLASSES, MOST_CONFUSED
from monitor.render.blit import TEXT_CACHE_BYTES, Blitter
from monitor.render.cells import annotation, heatmap_values, text_color
from monitor.render.large_heatmap import LargeHeatmap
from monitor.render.names import HEATMAP_NAME_WIDTH, short_name
from monitor.render.png import DPI


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


class ConfusionHeatmapRenderer:
    """The confusion heatmap of one run's class names, redrawn per epoch over a cached background.

    The colour scale is fixed for the run so colours compare across epochs:
    [0, 1] for row-normalised rates, [0, largest class support] for counts
    (the validation set, hence its supports, is the same every epoch; a new
    largest support rebuilds the figure). Up to ``ANNOTATE_MAX_CLASSES`` classes:
    the annotated seaborn heatmap. Above: the whole matrix as an image beside the
    annotated sub-matrix of the ``most_confused`` classes (see ``LargeHeatmap``).
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
        self._blit: Blitter | LargeHeatmap | None = None
        self._key = None

    def render(self, cm: np.ndarray, title: str) -> bytes:
        counts = np.asarray(cm)
        n = len(self.names)
        if counts.shape != (n, n):
            raise ValueError(f"cm shape {counts.shape} does not match {n} class names")
        vmax = 1.0 if self.normalized else float(max(int(counts.sum(axis=1).max(initial=0)), 1))
        if n > ANNOTATE_MAX_CLASSES:
            if not isinstance(self._blit, LargeHeatmap) or vmax != self._key:
                self._blit = LargeHeatmap(self.names, self.normalized, vmax, self.most_confused,
                                          self.text_cache_bytes)
                self._key = vmax
            return self._blit.render(counts, title)
        key = (vmax, len(str(int(vmax))))
        if not isinstance(self._blit, Blitter) or key != self._key:
            self._build(counts, vmax)
            self._key = key
        self._update(counts, title)
        return self._blit.png()

    def _build(self, counts: np.ndarray, vmax: float) -> None:
        import pandas as pd
        import seaborn as sns

        names = [short_name(n, HEATMAP_NAME_WIDTH) for n in self.names]
        data = heatmap_values(counts, self.normalized)
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
        self._blit = Blitter(fig, [self._mesh, *self._texts, title], self.text_cache_bytes)

    def _update(self, counts: np.ndarray, title: str) -> None:
        data = heatmap_values(counts, self.normalized)
        self._mesh.set_array(data.ravel())
        self._title.set_text(title)
        if self._texts:
            colors = self._mesh.cmap(self._mesh.norm(data.ravel()))
            for text, value, color in zip(self._texts, data.ravel(), colors, strict=True):
                text.set_text(annotation(value, self.normalized))
                text.set_color(text_color(color))


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
