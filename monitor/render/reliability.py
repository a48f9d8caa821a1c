"""The reliability diagram: accuracy against confidence per bin, the gap to the diagonal shaded,
the share of samples per bin beneath."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from monitor.render.png import DPI, to_png


def reliability_png(stats: dict, title: str) -> bytes:
    """`stats`: `monitor.calibration.reliability`'s answer. Bars of accuracy per confidence bin
    (empty bins left out), the gap to each bin's mean confidence shaded red (over-confident: the
    bar falls short of the diagonal) or blue (under-confident), and a second panel with the share
    of samples in each bin. 6 x 6.4 inches at `DPI`."""
    return ReliabilityRenderer().render(stats, title)


class ReliabilityRenderer:
    """`reliability_png` for every epoch of a run: the figure, its axes, the diagonal and the labels
    are made once (a third of a diagram's cost); each `render` replaces the bars and the title.

    ```python
    renderer = ReliabilityRenderer()
    png = renderer.render(stats, "Validation, epoch 3")
    ```
    """

    def __init__(self):
        self.fig = Figure(figsize=(6.0, 6.4), dpi=DPI)
        self.top, self.bottom = self.fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        self.fig.subplots_adjust(left=0.13, right=0.97, bottom=0.09, top=0.88, hspace=0.08)
        self.diagonal = self.top.plot([0, 1], [0, 1], ":", color="0.5", linewidth=1.0,
                                      label="perfect calibration")[0]
        self.top.set_ylabel("Accuracy")
        self.top.set_xlim(0, 1)
        self.top.set_ylim(0, 1)
        self.top.grid(True, alpha=0.3)
        self.bottom.set_ylabel("Share")
        self.bottom.set_xlabel("Confidence (probability of the predicted class)")
        self.bottom.grid(True, alpha=0.3)
        self._bars: list = []

    def render(self, stats: dict, title: str) -> bytes:
        for bars in self._bars:
            bars.remove()
        acc, conf, share = (np.asarray(stats[k], np.float64) for k in ("accuracy", "confidence", "share"))
        bins = len(acc)
        edges = np.linspace(0.0, 1.0, bins + 1)
        centers, width = (edges[:-1] + edges[1:]) / 2, 1.0 / bins
        filled = np.isfinite(acc)
        top = self.top
        self._bars = [top.bar(centers[filled], acc[filled], width=width * 0.95, color="C0", edgecolor="white",
                              label="accuracy")]
        over = filled & (conf > acc)
        gaps = ((over, "C3", "over-confident gap"), (filled & ~over, "C9", "under-confident gap"))
        for mask, color, label in gaps:
            if mask.any():
                low, high = np.minimum(acc[mask], conf[mask]), np.maximum(acc[mask], conf[mask])
                self._bars.append(top.bar(centers[mask], high - low, bottom=low, width=width * 0.95,
                                          color=color, alpha=0.45, edgecolor=color, hatch="//", label=label))
        top.legend(fontsize=8, loc="upper left")  # the entries of this epoch's bars
        ece, mce = stats.get("ece", float("nan")), stats.get("mce", float("nan"))
        top.set_title(f"{title}\nECE {_pct(ece)}, MCE {_pct(mce)}, "
                      f"confidence − accuracy {_signed_pct(stats.get('over_confidence', float('nan')))}",
                      fontsize=11)
        self._bars.append(self.bottom.bar(centers, share, width=width * 0.95, color="0.55"))
        self.bottom.set_ylim(0, max(0.05, float(np.nanmax(share)) * 1.1 if share.size else 1.0))
        return to_png(self.fig)


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"


def _signed_pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:+.1f} points"
