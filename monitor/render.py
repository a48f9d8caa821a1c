"""Render metrics and predictions to PNG bytes (arrays in, PNG bytes out).

Only matplotlib's object API is used (``Figure`` + Agg via ``savefig``), so no
figure is ever registered with pyplot and nothing accumulates between calls.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from monitor.metrics import normalize_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 80
RIGHT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"
BAR_COLOR = "#777777"


def _to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Encode ``fig`` as PNG with fast zlib compression.

    The figure is not cleared afterwards (``fig.clear()`` costs ~40 ms because
    it rebuilds ticks): no pyplot manager references it, so it is freed as
    soon as the caller drops it.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG, read from its IHDR chunk."""
    if len(png) < 24 or png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _display_images(images: np.ndarray) -> np.ndarray:
    """Images (K,H,W[,C]) as float in [0, 1]; uint8 or 0..255 floats rescaled."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (K, H, W, C), got {np.shape(images)}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    else:
        out = arr.astype(np.float32)
        if out.size and np.nanmax(out) > 1.5:
            out = out / 255.0
    return np.clip(np.nan_to_num(out), 0.0, 1.0)


def _show(ax: Axes, image: np.ndarray) -> None:
    """Draw one (H, W, C) image in [0, 1]; single channel in grey."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image[..., :3], interpolation="nearest")


def _heatmap_axes(names: Sequence[str], annot_chars: int) -> tuple[Figure, Axes, Axes, float, bool]:
    """Figure, heatmap axes, colorbar axes, annotation font size (0: none) and
    whether x tick labels should be rotated (names longer than 3 characters).

    Margins are computed in inches from the label lengths instead of using a
    layout engine, which would cost ~60 ms per render.
    """
    n = max(len(names), 1)
    label_chars = max((len(s) for s in names), default=1)
    char_in = 0.6 * 10 / 72  # approximate width of a 10 pt character
    left = 0.5 + label_chars * char_in
    rotate = label_chars > 3
    bottom = 0.45 + (0.65 * (label_chars * char_in + 0.15) if rotate else 0.2)
    top, right = 0.45, 1.0
    cell = min(0.55, 16.0 / n)
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


def confusion_heatmap(
    cm: np.ndarray,
    class_names: Sequence[str],
    title: str,
    normalized: bool = True,
) -> bytes:
    """Seaborn heatmap of ``cm`` (true rows, predicted columns) as PNG bytes.

    ``normalized`` draws row-normalised rates (".2f", range [0, 1]); otherwise
    raw integer counts.
    """
    import pandas as pd
    import seaborn as sns

    counts = np.asarray(cm)
    names = [str(n) for n in class_names]
    n = len(names)
    if counts.shape != (n, n):
        raise ValueError(f"cm shape {counts.shape} does not match {n} class names")
    if normalized:
        data = normalize_rows(counts)
        fmt, vmin, vmax = ".2f", 0.0, 1.0
    else:
        data = counts.astype(np.int64)
        fmt, vmin, vmax = "d", None, None
    frame = pd.DataFrame(data, index=names, columns=names)

    max_value = float(np.max(data)) if data.size else 0.0
    width_chars = 4 if normalized else max(1, len(str(int(max_value))))
    fig, ax, cax, font, rotate = _heatmap_axes(names, width_chars)
    sns.heatmap(
        frame,
        ax=ax,
        cbar_ax=cax,
        annot=font > 0,
        fmt=fmt,
        cmap="Blues",
        vmin=vmin,
        vmax=vmax,
        annot_kws={"fontsize": font},
    )
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(title, fontsize=12)
    if rotate:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    else:
        ax.tick_params(axis="x", labelrotation=0)
    ax.tick_params(axis="y", labelrotation=0)
    return _to_png(fig)


def prediction_grid(
    images: np.ndarray,
    true_idx: Sequence[int],
    pred_idx: Sequence[int],
    confidence: Sequence[float],
    class_names: Sequence[str],
    title: str,
    cols: int = 6,
) -> bytes:
    """Grid of images titled "truth : prediction (87%)", green right / red wrong."""
    imgs = _display_images(images)
    true_idx = np.asarray(true_idx).reshape(-1)
    pred_idx = np.asarray(pred_idx).reshape(-1)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    k = imgs.shape[0]
    if not (len(true_idx) == len(pred_idx) == len(confidence) == k):
        raise ValueError("images, true_idx, pred_idx and confidence lengths differ")
    ncols = max(1, min(cols, k))
    nrows = max(1, math.ceil(k / ncols))
    cell_w, cell_h = 2.3, 2.35
    title_w = 0.6 * 13 / 72 * len(title) + 0.4  # rough width of the 13 pt suptitle
    fig = Figure(figsize=(max(cell_w * ncols, title_w), cell_h * nrows + 0.5), dpi=DPI)
    top = 1.0 - 0.5 / (cell_h * nrows + 0.5)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top - 0.01, wspace=0.08, hspace=0.25)
    fig.suptitle(title, fontsize=13, y=1.0 - 0.12 / (cell_h * nrows + 0.5), va="top")
    for i in range(k):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        _show(ax, imgs[i])
        ok = int(true_idx[i]) == int(pred_idx[i])
        # ax.text instead of set_title: title placement measures tick boxes
        # and roughly doubles the render time of an 18-image grid.
        ax.text(
            0.5,
            1.03,
            f"{class_names[int(true_idx[i])]} : {class_names[int(pred_idx[i])]}"
            f" ({100.0 * confidence[i]:.0f}%)",
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            color=RIGHT_COLOR if ok else WRONG_COLOR,
            fontsize=9,
        )
        ax.set_axis_off()
    return _to_png(fig)


def probability_bars(
    images: np.ndarray,
    true_idx: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    title: str,
) -> bytes:
    """Per image: picture labelled "pred 83% (truth)" and a class-probability bar chart.

    Bars are grey; the predicted class red, the true class blue (blue wins).
    """
    imgs = _display_images(images)
    probs = np.asarray(probs, dtype=np.float64)
    true_idx = np.asarray(true_idx).reshape(-1)
    k = imgs.shape[0]
    names = [str(n) for n in class_names]
    n = len(names)
    if probs.shape != (k, n) or len(true_idx) != k:
        raise ValueError(f"probs must be ({k}, {n}) and true_idx length {k}")
    long_names = max((len(s) for s in names), default=1) > 2
    row_h = 2.6 if long_names else 2.1
    height = row_h * k + 0.5
    fig = Figure(figsize=(8.0, height), dpi=DPI)
    fig.subplots_adjust(
        left=0.03,
        right=0.98,
        bottom=(0.75 if long_names else 0.45) / height,
        top=1.0 - 0.55 / height,
        wspace=0.15,
        hspace=(0.85 if long_names else 0.55) / row_h * 2,
    )
    fig.suptitle(title, fontsize=13, y=1.0 - 0.1 / height, va="top")
    grid = fig.add_gridspec(k, 2, width_ratios=[1.0, 2.6])
    xs = np.arange(n)
    for i in range(k):
        pred = int(np.argmax(probs[i]))
        truth = int(true_idx[i])
        color = "tab:blue" if pred == truth else "tab:red"

        ax_img = fig.add_subplot(grid[i, 0])
        _show(ax_img, imgs[i])
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_xlabel(
            f"{names[pred]} {100.0 * probs[i, pred]:.0f}% ({names[truth]})",
            color=color,
            fontsize=10,
        )

        ax_bar = fig.add_subplot(grid[i, 1])
        colors = [BAR_COLOR] * n
        colors[pred] = "tab:red"
        colors[truth] = "tab:blue"
        ax_bar.bar(xs, probs[i], color=colors)
        ax_bar.set_ylim(0.0, 1.0)
        ax_bar.set_xlim(-0.6, n - 0.4)
        ax_bar.set_xticks(xs)
        ax_bar.set_xticklabels(
            names,
            rotation=35 if long_names else 0,
            ha="right" if long_names else "center",
            rotation_mode="anchor",
            fontsize=9,
        )
        ax_bar.set_yticks([0.0, 0.5, 1.0])
        ax_bar.tick_params(axis="y", labelsize=8)
    return _to_png(fig)
