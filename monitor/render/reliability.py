"""The reliability diagram: accuracy against confidence per bin, the gap to the diagonal shaded,
the share of samples per bin beneath."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from monitor.render.blit import TEXT_CACHE_BYTES, Blitter
from monitor.render.png import DPI

OVER, UNDER = ("C3", "over-confident gap"), ("C9", "under-confident gap")


def reliability_png(stats: dict, title: str) -> bytes:
    """`stats`: `monitor.calibration.reliability`'s answer. Bars of accuracy per confidence bin
    (empty bins left out), the gap to each bin's mean confidence shaded red (over-confident: the
    bar falls short of the diagonal) or blue (under-confident), and a second panel with the share
    of samples in each bin. 6 x 6.4 inches at `DPI`."""
    return ReliabilityRenderer(text_cache_bytes=0).render(stats, title)


class ReliabilityRenderer:
    """`reliability_png` for every epoch of a run, redrawn over a cached background: the axes, the
    grid and the labels are drawn once per bin count; each `render` draws the bars, the legend of
    the gaps shown, the share panel's y axis (its scale follows the largest share) and the title.

    ```python
    renderer = ReliabilityRenderer()
    png = renderer.render(stats, "Validation, epoch 3")
    ```
    """

    def __init__(self, text_cache_bytes: int = TEXT_CACHE_BYTES):
        self.text_cache_bytes = text_cache_bytes
        self._blit: Blitter | None = None

    def render(self, stats: dict, title: str) -> bytes:
        acc, conf, share = (np.asarray(stats[k], np.float64) for k in ("accuracy", "confidence", "share"))
        if self._blit is None or len(acc) != len(self._accuracy):  # built once per bin count
            self._build(len(acc))
        filled = np.isfinite(acc)
        over = filled & (conf > acc)
        low, high = np.minimum(acc, conf), np.maximum(acc, conf)
        for i in range(len(acc)):
            self._accuracy[i].set_visible(bool(filled[i]))
            self._accuracy[i].set_height(acc[i] if filled[i] else 0.0)
            for gaps, shown in ((self._over, over[i]), (self._under, filled[i] and not over[i])):
                gaps[i].set_visible(bool(shown))
                if shown:
                    gaps[i].set_y(low[i])
                    gaps[i].set_height(high[i] - low[i])
            self._share[i].set_height(share[i])
        kinds = (bool(over.any()), bool((filled & ~over).any()))
        for key, legend in self._legends.items():
            legend.set_visible(key == kinds)
        ece, mce = stats.get("ece", float("nan")), stats.get("mce", float("nan"))
        self._title.set_text(f"{title}\nECE {_pct(ece)}, MCE {_pct(mce)}, confidence − accuracy "
                             f"{_signed_pct(stats.get('over_confidence', float('nan')))}")
        self._bottom.set_ylim(0, max(0.05, float(np.nanmax(share)) * 1.1 if share.size else 1.0))
        return self._blit.png()

    def _build(self, bins: int) -> None:
        fig = Figure(figsize=(6.0, 6.4), dpi=DPI)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.09, top=0.88, hspace=0.08)
        diagonal = top.plot([0, 1], [0, 1], ":", color="0.5", linewidth=1.0, label="perfect calibration")[0]
        top.set_ylabel("Accuracy")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        for ax in (top, bottom):
            ax.set_axisbelow(True)  # the grid under the bars: it is in the background
            ax.grid(True, alpha=0.3)
        bottom.set_ylabel("Share")
        bottom.set_xlabel("Confidence (probability of the predicted class)")
        edges = np.linspace(0.0, 1.0, bins + 1)
        centers, width, zeros = (edges[:-1] + edges[1:]) / 2, 0.95 / bins, np.zeros(bins)
        self._accuracy = top.bar(centers, zeros, width=width, color="C0", edgecolor="white", label="accuracy")
        self._over, self._under = (top.bar(centers, zeros, bottom=zeros, width=width, color=color,
                                           alpha=0.45, edgecolor=color, hatch="//", label=label)
                                   for color, label in (OVER, UNDER))
        self._share = bottom.bar(centers, zeros, width=width, color="0.55")
        self._legends = {}  # one per kind of gap shown (over, under), as `legend()` would list them
        for kinds in ((True, True), (True, False), (False, True), (False, False)):
            gaps = [h for h, shown in zip((self._over, self._under), kinds, strict=True) if shown]
            handles = [diagonal, self._accuracy, *gaps]
            legend = Legend(top, handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")
            top.add_artist(legend)
            self._legends[kinds] = legend
        self._title = top.set_title(" ", fontsize=11)
        self._bottom = bottom
        bars = [*self._accuracy, *self._over, *self._under]
        dynamic = [*bars, diagonal, *top.spines.values(), *self._legends.values(), self._title,
                   bottom.yaxis, *self._share, *bottom.spines.values()]
        self._blit = Blitter(fig, dynamic, self.text_cache_bytes)


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"


def _signed_pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:+.1f} points"
