"""A multi-label head's pictures: per-label precision/recall/F1 bars with their counts, and the
missed x added label co-occurrence heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from monitor.limits import ANNOTATE_MAX_CLASSES
from monitor.metrics import multilabel_per_class
from monitor.render.cells import text_color
from monitor.render.heatmap import _heatmap_axes
from monitor.render.names import HEATMAP_NAME_WIDTH, LABEL_NAME_WIDTH, short_name
from monitor.render.png import DPI, to_png

METRIC_COLORS = {"precision": "tab:blue", "recall": "tab:orange", "f1": "tab:green"}


def _counts_text(tp, fp, fn, tn, digits: int) -> str:
    """"TP  12  FP   3  FN   0  TN  45", the numbers right-aligned to `digits`."""
    return "  ".join(f"{k} {int(v):>{digits}}" for k, v in (("TP", tp), ("FP", fp), ("FN", fn), ("TN", tn)))


def label_counts_png(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray,
                     class_names: Sequence[str], title: str, rows: int = ANNOTATE_MAX_CLASSES) -> bytes:
    """Per label: precision, recall and F1 bars at the threshold, its TP/FP/FN/TN counts beside them.

    Up to `rows` labels every label, in class order; above, the `rows` of lowest F1, worst first
    (the axis says so). At most about 10 x 13 inches at `DPI`.
    """
    names = [str(n) for n in class_names]
    stats = multilabel_per_class(tp, fp, fn)
    shown = np.arange(len(names))
    if len(names) > rows:
        shown = np.lexsort((np.arange(len(names)), stats["f1"]))[:rows]
    k = len(shown)
    label_w = 0.3 + 0.075 * max((len(short_name(names[i], LABEL_NAME_WIDTH)) for i in shown), default=1)
    digits = len(str(int(np.max(np.asarray(tp) + fp + fn + tn, initial=0))))  # of N, the images
    count_w = 0.3 + len(_counts_text(0, 0, 0, 0, digits)) * 0.6 * 8 / 72
    width, height = max(9.0, label_w + 4.5 + count_w), 1.5 + 0.36 * k
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((label_w / width, 0.55 / height, 1 - (label_w + count_w) / width, 1 - 1.3 / height))
    ys = np.arange(k)
    for offset, metric in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1"), strict=True):
        ax.barh(ys + offset, stats[metric][shown], height=0.26, color=METRIC_COLORS[metric], label=metric)
    for y, i in zip(ys, shown, strict=True):
        ax.text(1.02, y, _counts_text(tp[i], fp[i], fn[i], tn[i], digits), transform=ax.get_yaxis_transform(),
                va="center", ha="left", family="monospace", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([short_name(names[i], LABEL_NAME_WIDTH) for i in shown], fontsize=9)
    ax.set_ylim(k - 0.5, -0.5)  # first label on top
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("at the threshold" if k == len(names) else
                  f"the {k} labels of lowest F1 of {len(names)}, worst first", fontsize=9)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=12, y=1.0 - 0.08 / height, va="top")
    return to_png(fig)


def cooccurrence_png(cooc: np.ndarray, class_names: Sequence[str], title: str,
                     most: int = ANNOTATE_MAX_CLASSES) -> bytes:
    """Heatmap of `cooc[i, j]`: the images where label i was missed while label j was added (raw
    counts, not normalised; the diagonal is always 0). Above `most` labels: the `most` labels
    with the most such images, missed or added (the axis says so)."""
    cooc = np.asarray(cooc, np.int64)
    names = [str(n) for n in class_names]
    if cooc.shape != (len(names), len(names)):
        raise ValueError(f"cooccurrence shape {cooc.shape} does not match {len(names)} class names")
    shown = np.arange(len(names))
    if len(names) > most:
        involved = cooc.sum(axis=0) + cooc.sum(axis=1)
        shown = np.lexsort((np.arange(len(names)), -involved))[:most]
    sub = cooc[np.ix_(shown, shown)]
    ticks = [short_name(names[i], HEATMAP_NAME_WIDTH) for i in shown]
    vmax = max(int(sub.max(initial=0)), 1)
    fig, ax, cax, font, rotate = _heatmap_axes(ticks, max(1, len(str(vmax))))
    image = ax.imshow(sub, cmap="Blues", vmin=0, vmax=vmax, aspect="auto", interpolation="nearest")
    fig.colorbar(image, cax=cax)
    if font > 0:
        colors = image.cmap(image.norm(sub.ravel()))
        for (i, j), value, color in zip(np.ndindex(sub.shape), sub.ravel(), colors, strict=True):
            ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=font, color=text_color(color))
    ax.set_xticks(np.arange(len(shown)), ticks, rotation=45 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor")
    ax.set_yticks(np.arange(len(shown)), ticks)
    more = "" if len(shown) == len(names) else f" ({len(shown)} of {len(names)} labels, most involved)"
    ax.set_xlabel("Added label (false positive)" + more)
    ax.set_ylabel("Missed label (false negative)")
    ax.set_title(title, fontsize=12)
    return to_png(fig)
