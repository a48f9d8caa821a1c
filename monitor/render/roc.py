"""The ROC curve of a binary head, its AUC in the title, operating points marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from monitor.render.png import DPI, to_png


def roc_curve_png(fpr: np.ndarray, tpr: np.ndarray, auc: float, title: str,
                  marks: Sequence[tuple[str, float, float]] = ()) -> bytes:
    """ROC curve through (0, 0), the thresholded points and (1, 1), with the chance diagonal.

    ``marks``: ``(label, fpr, tpr)`` operating points drawn as dots with their label in the
    legend (e.g. the user's threshold and the best-F1 threshold). 6 x 5.4 inches at `DPI`.
    """
    fpr = np.concatenate([[0.0], np.asarray(fpr, np.float64)[::-1], [1.0]])
    tpr = np.concatenate([[0.0], np.asarray(tpr, np.float64)[::-1], [1.0]])
    fig = Figure(figsize=(6.0, 5.4), dpi=DPI)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.11, top=0.88)
    ax.plot([0, 1], [0, 1], ":", color="0.6", linewidth=1.0, label="chance")
    ax.plot(fpr, tpr, "-", color="C0", linewidth=1.8, label="ROC")
    for (label, x, y), marker, color in zip(marks, "os^D", ("C3", "C2", "C1", "C4"), strict=False):
        ax.plot([x], [y], marker, color=color, markersize=8, linestyle="none", label=label)
    auc_text = "n/a" if not np.isfinite(auc) else f"{auc:.4f}"
    ax.set_title(f"{title}\nROC AUC = {auc_text}", fontsize=11)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return to_png(fig)
