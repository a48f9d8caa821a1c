"""ConfidentMistakesCallback: the most confident wrong predictions of each validation pass."""

from __future__ import annotations

from callbacks.base import DEFAULTS, ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.dashboard import summary as dashboard_summary
from monitor.names import check_class_names
from monitor.render import PredictionGridRenderer, thumbnail_pngs
from monitor.tags import block_tag


def mistake_records(state: EvaluationState) -> list[dict]:
    """The captured mistakes, most confident first: `true`, `predicted`, `confidence`, `position`."""
    if state.mistake_labels is None:
        return []
    return [{"true": int(t), "predicted": int(p), "confidence": round(float(c), 6), "position": int(pos)}
            for t, p, c, pos in zip(state.mistake_labels, state.mistake_predicted,
                                    state.mistake_confidence, state.mistake_positions, strict=True)
            if t >= 0]


class ConfidentMistakesCallback(ValidationSummaryCallback):
    """Writes the validation pass's most confident mistakes (a label-noise finder).

    For plain TensorBoard: `mistakes/most_confident`, a grid of the `grid_size` most
    confident wrong predictions, titled "truth : prediction (confidence %)". For the
    dashboard: every captured mistake (the capture's `mistakes`, 64 by default) with a
    thumbnail, shown when a confusion-matrix cell is clicked. A multi-label head: nothing (its
    capture keeps no mistakes).

    ```python
    capture = ValidationCaptureCallback(num_classes=10, mistakes=64)
    mistakes = ConfidentMistakesCallback(capture, writers, class_names, grid_size=12)
    ```
    """

    def __init__(self, source, writers, class_names, grid_size: int = DEFAULTS.mistakes_grid,
                 columns: int = DEFAULTS.grid_columns, display_transform=None, **kwargs):
        super().__init__(source, writers, **kwargs)
        for arg, value, low in (("grid_size", grid_size, 0), ("columns", columns, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"Invalid value for argument `{arg}`. Received: {arg}={value}")
        self.class_names = check_class_names(class_names)
        self.grid_size = grid_size
        self.columns = columns
        self.display_transform = display_transform
        self.grid_renderer = self.renderer(PredictionGridRenderer, self.class_names, columns,
                                           display_transform, images_change=True)

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.multi_label is not None:
            return  # no confident mistakes are captured for a multi-label head
        records = mistake_records(state)
        images = state.mistake_images
        title = f"Most confident mistakes, {self.epoch_title(epoch)}"
        binary = state.binary_threshold is not None

        def work() -> None:
            thumbnails = self.drawn(thumbnail_pngs, picture=False)  # data: drawn in every epoch
            dashboard_summary.confident_mistakes(
                records, thumbnails(images, len(records), self.display_transform), step=epoch,
                epochs_per_tag=self.epochs_per_tag)
            n = min(self.grid_size, len(records))
            if n and images is not None:
                shown = records[:n]
                confidence = [r["confidence"] for r in shown]
                if binary:  # p(positive): the predicted class's probability, or 1 minus it
                    confidence = [c if r["predicted"] == 1 else 1.0 - c for r, c in zip(shown, confidence,
                                                                                          strict=True)]
                png = self.grid_renderer.render(images[:n], [r["true"] for r in shown],
                                           [r["predicted"] for r in shown], confidence, title,
                                           positive=1 if binary else None)
                tag = block_tag("mistakes/most_confident", epoch, self.epochs_per_tag)
                summaries.png_image(tag, png, epoch)

        self.submit(work)
