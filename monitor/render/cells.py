"""What both confusion heatmaps write in a cell: its value, its number, the number's colour."""

from __future__ import annotations

import numpy as np

from monitor.metrics import normalize_rows


def heatmap_values(cm: np.ndarray, normalized: bool) -> np.ndarray:
    """Row-normalised rates, or the counts as int64."""
    return normalize_rows(cm) if normalized else np.asarray(cm).astype(np.int64)


def annotation(value: float, normalized: bool) -> str:
    """A cell's number: "0.42" for rates, "17" for counts."""
    return f"{value:.2f}" if normalized else f"{int(value)}"


def text_color(rgba) -> str:
    """Seaborn's annotation colour: dark on light cells, white on dark ones."""
    from seaborn.utils import relative_luminance

    return ".15" if relative_luminance(rgba) > 0.408 else "w"
