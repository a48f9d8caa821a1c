"""PredictionGridCallback: a grid of validation images with their predictions."""

from __future__ import annotations

import numpy as np

from callbacks.base import DEFAULTS, ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.limits import ALL_BARS_MAX_CLASSES
from monitor.names import check_class_names
from monitor.render import PredictionGridRenderer, ProbabilityBarsRenderer, multilabel_titles
from monitor.tags import block_tag


def pick_samples(state: EvaluationState, n: int) -> np.ndarray:
    """Slot indices of up to `n` captured images, every captured class first, in validation order.

    Slots come in blocks of k, one block per class (the first k images of that
    class); taking slot 0 of every block, then slot 1, ..., makes every class
    present appear when n allows it. The choice depends only on the (fixed)
    validation order, so it is the same each epoch.
    """
    k = state.samples_per_class
    filled = state.sample_positions >= 0
    order = [b * k + j for j in range(k) for b in range(len(filled) // k) if filled[b * k + j]]
    chosen = np.array(order[:n], dtype=np.int64)
    return chosen[np.argsort(state.sample_positions[chosen], kind="stable")]


class PredictionGridCallback(ValidationSummaryCallback):
    """Writes `predictions/grid` (titled "truth : prediction (confidence %)", green
    right / red wrong) and `predictions/probabilities` (image beside its class
    probability bars) for a fixed set of validation images. A multi-label head: the grid
    alone, each image titled with its true label set over its predicted set with probabilities
    ("true: cat, dog" / "pred: cat 0.91, car 0.62"), green when the sets agree.

    ```python
    grid = PredictionGridCallback(capture, writers, names, grid_size=18, columns=6)
    ```
    """

    def __init__(self, source, writers, class_names, grid_size: int = DEFAULTS.grid_size,
                 columns: int = DEFAULTS.grid_columns, probability_images: int = DEFAULTS.probability_images,
                 display_transform=None, **kwargs):
        super().__init__(source, writers, **kwargs)
        for arg, value, low in (("grid_size", grid_size, 0), ("columns", columns, 1),
                                ("probability_images", probability_images, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"Invalid value for argument `{arg}`. Received: {arg}={value}")
        if grid_size == 0 and probability_images == 0:
            raise ValueError("PredictionGridCallback needs `grid_size` or `probability_images` > 0")
        self.class_names = check_class_names(class_names)
        self.grid_size = grid_size
        self.columns = columns
        self.probability_images = probability_images
        if display_transform is not None and not callable(display_transform):
            raise ValueError("Invalid value for argument `display_transform`: expected a callable "
                             f"(images -> uint8 or [0, 1] floats). Received: {display_transform!r}")
        self.display_transform = display_transform
        self.grid_renderer = self.renderer(PredictionGridRenderer, self.class_names, columns,
                                           display_transform)
        self.bars_renderer = self.renderer(ProbabilityBarsRenderer, self.class_names,
                                           display_transform=display_transform)
        self.sets_renderer = None  # a multi-label head's, made when needed

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.sample_images is None:
            return
        if state.multi_label is not None:
            self.write_multi_label(epoch, state)
            return
        draw = self.pictures(epoch, state)
        if draw is None:
            return

        def work() -> None:
            for tag, png in draw():
                summaries.png_image(tag, png, epoch)

        self.submit(work)

    def pictures(self, epoch: int, state: EvaluationState, grid: bool = True):
        """`draw() -> [(tag, png)]`: the grid (`grid`) and the probability bars of `state`'s sample
        images (None when there are none; a multi-label head's grid is `write_multi_label`'s)."""
        if state.sample_images is None or state.multi_label is not None:
            return None
        chosen = pick_samples(state, max(self.grid_size, self.probability_images))
        if chosen.size == 0:
            return None
        images = state.sample_images[chosen]
        truth = state.sample_labels[chosen]
        probs = state.sample_probs[chosen]
        title = f"Validation predictions, {self.epoch_title(epoch)}"
        predicted = state.predicted(probs)
        binary = state.binary_threshold is not None  # titled with p(positive), not the top score
        shown = probs[:, 1] if binary else probs[np.arange(len(probs)), predicted]
        ept = self.epochs_per_tag

        def draw() -> list[tuple[str, bytes]]:
            pictures = []
            if self.grid_size and grid:
                n = self.grid_size
                png = self.grid_renderer.render(images[:n], truth[:n], predicted[:n], shown[:n], title,
                                                positive=1 if binary else None)
                pictures.append((block_tag("predictions/grid", epoch, ept), png))
            if self.probability_images:
                n = self.probability_images
                png = self.bars_renderer.render(images[:n], truth[:n], probs[:n],
                                                f"Class probabilities, {self.epoch_title(epoch)}")
                pictures.append((block_tag("predictions/probabilities", epoch, ept), png))
            return pictures

        return draw

    def rehearsal(self, epoch: int, state: EvaluationState):
        """The probability bars, where every class has a bar: their axes are most of their cost (the
        grid's cost is its titles, and above ALL_BARS_MAX_CLASSES the bars' are their class names)."""
        if not self.probability_images or len(self.class_names) > ALL_BARS_MAX_CLASSES:
            return None
        return self.pictures(epoch, state, grid=False)

    def write_multi_label(self, epoch: int, state: EvaluationState) -> None:
        """The grid of a multi-label head: true label set over predicted set, per image."""
        chosen = pick_samples(state, self.grid_size)
        if chosen.size == 0:
            return
        threshold = state.multi_label.threshold
        texts, right = multilabel_titles(state.sample_targets[chosen], state.sample_probs[chosen], threshold,
                                         self.class_names)
        images = state.sample_images[chosen]
        title = f"Validation predictions (p >= {threshold:g}), {self.epoch_title(epoch)}"
        if self.sets_renderer is None:
            self.sets_renderer = self.renderer(PredictionGridRenderer, self.class_names, self.columns,
                                               self.display_transform, label_lines=2)

        def work() -> None:
            png = self.sets_renderer.render_texts(images, texts, right, title)
            summaries.png_image(block_tag("predictions/grid", epoch, self.epochs_per_tag), png, epoch)

        self.submit(work)
