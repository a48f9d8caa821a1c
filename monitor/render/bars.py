"""Bar charts: class probabilities per image (``ProbabilityBarsRenderer``) and per-class recall."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from monitor.limits import ALL_BARS_MAX_CLASSES, TOP_K
from monitor.render.blit import TEXT_CACHE_BYTES, Blitter
from monitor.render.images import DisplayTransform, display_images
from monitor.render.names import LABEL_NAME_WIDTH, drawable, short_name
from monitor.render.panels import PixelBox, canvas_size, figure_box, fitted, paste_all, to_rgb8
from monitor.render.png import DPI, to_png

BAR_COLOR = "#777777"


def _image_cell(fig: Figure, cell, image: np.ndarray) -> tuple[Text, PixelBox]:
    """The framed place of one image in grid cell ``cell`` (pasted by pixel, no Axes), and its
    (empty) label under it."""
    box = fitted(figure_box(fig, cell.get_position(fig).bounds), *image.shape[:2])
    fig_height, fig_width = canvas_size(fig)
    left, bottom, right, top = box.figure_fraction(fig_height, fig_width)
    fig.add_artist(Rectangle((left, bottom), right - left, top - bottom, transform=fig.transFigure,
                             fill=False, edgecolor="black", linewidth=0.8, zorder=3))
    # the label as text under the image, 4% of its height below it, as an xlabel would be
    label = fig.text((left + right) / 2, bottom - 0.04 * box.height / fig_height, " ", ha="center",
                     va="top", fontsize=10)
    return label, box


def _paint_images(boxes: list[PixelBox], images: np.ndarray):
    """A `paint_background` that pastes `images` into their `boxes`."""
    rgb = to_rgb8(images)
    return lambda pixels: paste_all(pixels, boxes, rgb)


class ProbabilityBarsRenderer:
    """Per image: the picture labelled "pred 83% (truth)" beside its class-probability bars.

    Up to ``ALL_BARS_MAX_CLASSES`` classes every class has a bar (grey; the
    predicted class red, the true class blue, blue wins) and only the bar
    heights, colours and labels are redrawn per epoch. Above, each image shows
    its ``top_k`` most probable classes and the true class, named, redrawn whole.
    """

    def __init__(self, class_names: Sequence[str], top_k: int = TOP_K,
                 display_transform: DisplayTransform | None = None, *,
                 text_cache_bytes: int = TEXT_CACHE_BYTES):
        self.names = [drawable(n) for n in class_names]
        self.top_k = top_k
        self.display_transform = display_transform
        self.text_cache_bytes = text_cache_bytes
        self._blit: Blitter | None = None
        self._key = None
        self._content = None  # the kept images' hash
        self._boxes = []  # where the images are pasted

    def render(self, images, true_idx, probs, title: str) -> bytes:
        probs = np.asarray(probs, dtype=np.float64)
        true_idx = np.asarray(true_idx).reshape(-1)
        images = np.asarray(images)
        k, n = images.shape[0], len(self.names)
        if probs.shape != (k, n) or len(true_idx) != k:
            raise ValueError(f"probs must be ({k}, {n}) and true_idx length {k}")
        if n > ALL_BARS_MAX_CLASSES:
            return self._top_k(display_images(images, self.display_transform), true_idx, probs, title)
        self._keep(("all", images.shape, images.dtype.str), images, self._build)
        for i in range(k):
            pred, truth = int(np.argmax(probs[i])), int(true_idx[i])
            for c, bar in enumerate(self._bars[i]):
                bar.set_height(probs[i, c])
                bar.set_color("tab:blue" if c == truth else "tab:red" if c == pred else BAR_COLOR)
            self._labels[i].set_text(
                f"{self.names[pred]} {100.0 * probs[i, pred]:.0f}% ({self.names[truth]})")
            self._labels[i].set_color("tab:blue" if pred == truth else "tab:red")
        self._title.set_text(title)
        return self._blit.png()

    def _keep(self, key: tuple, images: np.ndarray, build, shown: np.ndarray | None = None) -> None:
        """Build the figure for `key` (the layout: image count and size), or paste other images of
        that size into the kept one. `shown`: the display images, when already made."""
        content = hash(images.tobytes())
        if self._blit is not None and key == self._key and content == self._content:
            return
        shown = display_images(images, self.display_transform) if shown is None else shown
        if self._blit is None or key != self._key:
            build(shown)
        else:
            self._blit.repaint_background(_paint_images(self._boxes, shown))
        self._key, self._content = key, content

    def _layout(self, k: int, long_names: bool) -> tuple[Figure, object]:
        row_h = 2.6 if long_names else 2.1
        height = row_h * k + 0.5
        fig = Figure(figsize=(8.0, height), dpi=DPI)
        fig.subplots_adjust(left=0.03, right=0.98, bottom=(0.75 if long_names else 0.45) / height,
                            top=1.0 - 0.55 / height, wspace=0.15,
                            hspace=(0.85 if long_names else 0.55) / row_h * 2)
        self._title = fig.suptitle(" ", fontsize=13, y=1.0 - 0.1 / height, va="top")
        return fig, fig.add_gridspec(k, 2, width_ratios=[1.0, 2.6])

    def _build(self, imgs: np.ndarray) -> None:
        k, n = imgs.shape[0], len(self.names)
        long_names = max((len(s) for s in self.names), default=1) > 2
        fig, grid = self._layout(k, long_names)
        xs = np.arange(n)
        self._bars, self._labels, boxes = [], [], []
        for i in range(k):
            label, box = _image_cell(fig, grid[i, 0], imgs[i])
            self._labels.append(label)
            boxes.append(box)
            ax_bar = fig.add_subplot(grid[i, 1])
            self._bars.append(list(ax_bar.bar(xs, np.zeros(n), color=BAR_COLOR)))
            ax_bar.set_ylim(0.0, 1.0)
            ax_bar.set_xlim(-0.6, n - 0.4)
            ax_bar.set_xticks(xs)
            ax_bar.set_xticklabels([short_name(s) for s in self.names], rotation=35 if long_names else 0,
                                   ha="right" if long_names else "center", rotation_mode="anchor",
                                   fontsize=9)
            ax_bar.set_yticks([0.0, 0.5, 1.0])
            ax_bar.tick_params(axis="y", labelsize=8)
        dynamic = [self._title, *self._labels, *(bar for bars in self._bars for bar in bars)]
        self._boxes = boxes
        self._blit = Blitter(fig, dynamic, self.text_cache_bytes, paint_background=_paint_images(boxes, imgs))

    def _top_k(self, imgs: np.ndarray, true_idx: np.ndarray, probs: np.ndarray, title: str) -> bytes:
        """Above ALL_BARS_MAX_CLASSES: horizontal bars of the top-k classes and the true one.

        Built once per set of images with k + 1 bar slots per image; each epoch
        redraws the bars, their names and the labels over the cached images."""
        self._keep(("top", imgs.shape, imgs.dtype.str), imgs, self._build_top_k, shown=imgs)
        slots = self.top_k + 1
        for i in range(imgs.shape[0]):
            truth = int(true_idx[i])
            order = list(np.argsort(-probs[i], kind="stable")[: self.top_k])
            if truth not in order:
                order.append(truth)
            pred = int(order[0])
            for j in range(slots):
                bar, label = self._bars[i][j], self._names[i][j]
                bar.set_visible(j < len(order))  # a hidden bar, not one of width 0: Agg draws those
                if j < len(order):
                    c = order[j]
                    color = "tab:blue" if c == truth else "tab:red" if c == pred else BAR_COLOR
                    bar.set_width(probs[i, c])
                    bar.set_color(color)
                    name = short_name(self.names[c], LABEL_NAME_WIDTH)
                    label.set_text(f"{name} {100 * probs[i, c]:.0f}%" + (" (true)" if c == truth else ""))
                    label.set_color(color if color != BAR_COLOR else "black")
                else:
                    label.set_text("")
            self._labels[i].set_text(f"{100.0 * probs[i, pred]:.0f}% {'right' if pred == truth else 'wrong'}")
            self._labels[i].set_color("tab:blue" if pred == truth else "tab:red")
        self._title.set_text(title)
        return self._blit.png()

    def _build_top_k(self, imgs: np.ndarray) -> None:
        k, slots = imgs.shape[0], self.top_k + 1
        height = 2.1 * k + 0.5
        fig = Figure(figsize=(9.0, height), dpi=DPI)
        fig.subplots_adjust(left=0.02, right=0.97, bottom=0.45 / height, top=1.0 - 0.55 / height,
                            wspace=0.05, hspace=0.55 / 2.1 * 2)
        self._title = fig.suptitle(" ", fontsize=13, y=1.0 - 0.1 / height, va="top")
        grid = fig.add_gridspec(k, 3, width_ratios=[1.0, 1.25, 2.2])
        self._bars, self._names, self._labels, boxes = [], [], [], []
        ys = np.arange(slots)[::-1]
        for i in range(k):
            label, box = _image_cell(fig, grid[i, 0], imgs[i])
            self._labels.append(label)
            boxes.append(box)
            ax_bar = fig.add_subplot(grid[i, 2])  # the middle column holds the class names
            self._bars.append(list(ax_bar.barh(ys, np.zeros(slots), color=BAR_COLOR)))
            self._names.append([ax_bar.text(-0.02, y, " ", ha="right", va="center", fontsize=9,
                                            transform=ax_bar.get_yaxis_transform()) for y in ys])
            ax_bar.set_yticks([])
            ax_bar.set_ylim(-0.6, slots - 0.4)
            ax_bar.set_xlim(0.0, 1.0)
            ax_bar.set_xticks([0.0, 0.5, 1.0])
            ax_bar.tick_params(axis="x", labelsize=8)
            ax_bar.set_title(f"top {self.top_k} of {len(self.names)} classes, and the true class",
                             fontsize=9)
        dynamic = [self._title, *self._labels, *(a for row in self._bars for a in row),
                   *(a for row in self._names for a in row)]
        self._boxes = boxes
        self._blit = Blitter(fig, dynamic, self.text_cache_bytes, paint_background=_paint_images(boxes, imgs))


def probability_bars(
    images: np.ndarray,
    true_idx: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    title: str,
    display_transform: DisplayTransform | None = None,
    top_k: int = TOP_K,
) -> bytes:
    """Per image: picture labelled "pred 83% (truth)" and a class-probability bar chart.

    Bars are grey; the predicted class red, the true class blue (blue wins).
    Above ``ALL_BARS_MAX_CLASSES`` classes only the ``top_k`` classes and the true one.
    """
    return ProbabilityBarsRenderer(class_names, top_k, display_transform, text_cache_bytes=0).render(
        images, true_idx, probs, title)


def per_class_recall_bars(recall: np.ndarray, class_names: Sequence[str], title: str,
                          worst: int = 20) -> bytes:
    """Every class's recall as bars sorted worst first, the ``worst`` lowest named beside them.

    For class counts too large for one scalar per class (used above 30 classes).
    """
    recall = np.asarray(recall, dtype=np.float64)
    names = [str(n) for n in class_names]
    if recall.shape != (len(names),):
        raise ValueError(f"recall must have one value per class ({len(names)}), got {recall.shape}")
    order = np.lexsort((np.arange(len(names)), recall))
    fig = Figure(figsize=(12.0, 5.6), dpi=DPI)
    fig.suptitle(title, fontsize=13, y=0.98)
    ax = fig.add_axes((0.06, 0.12, 0.58, 0.76))
    # one filled step area, not one patch per class (1,000 bars cost ~0.4 s to draw); fill_between,
    # as its polygon's data limits are cheap to find, unlike a stairs patch's (~35 ms at 1,000)
    edges = np.arange(len(names) + 1) - 0.5
    heights = np.append(recall[order], recall[order][-1:])
    ax.fill_between(edges, heights, step="post", color="tab:blue", linewidth=0)
    shown = min(max(worst, 0), len(names))
    if shown:
        ax.fill_between(edges[: shown + 1], heights[: shown + 1], step="post", color="tab:red", linewidth=0)
    ax.axhline(float(recall.mean()) if recall.size else 0.0, color="black", linewidth=1, linestyle="--",
               label=f"mean {recall.mean():.3f}")
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(f"{len(names)} classes, sorted by recall (worst first)")
    ax.set_ylabel("Recall")
    ax.legend(loc="upper left", fontsize=9)
    side = fig.add_axes((0.67, 0.12, 0.31, 0.76))
    side.set_axis_off()
    side.set_title(f"The {shown} worst classes", fontsize=11, loc="left")
    labels = [f"{short_name(names[c], LABEL_NAME_WIDTH)} ({c})" for c in order[:shown]]
    lines = [f"{rank:>2}. {label:<{LABEL_NAME_WIDTH + 7}} {recall[c]:.3f}"
             for rank, (label, c) in enumerate(zip(labels, order[:shown], strict=True), 1)]
    side.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9,
              transform=side.transAxes, color="tab:red")
    return to_png(fig)
