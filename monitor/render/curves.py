"""Training curves: loss and accuracy per epoch, one colour per run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from monitor.render.png import DPI, to_png


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
    return to_png(fig)
