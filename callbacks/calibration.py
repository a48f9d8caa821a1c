"""CalibrationCallback: how far the model's confidence is from its accuracy, every epoch."""

from __future__ import annotations

from callbacks.base import ValidationSummaryCallback
from monitor import summaries
from monitor.calibration import calibration_scalars, reliability
from monitor.capture import EvaluationState
from monitor.dashboard import summary as dashboard_summary
from monitor.render.reliability import ReliabilityRenderer
from monitor.runfiles import calibration_lines
from monitor.tags import block_tag


class CalibrationCallback(ValidationSummaryCallback):
    """Every validated epoch: scalars `calibration/ece`, `calibration/mce`,
    `calibration/over_confidence` (mean confidence minus accuracy) and the image
    `calibration/reliability/<block>`, from the top-label reliability statistics the capture
    streams during Keras' own validation pass (15 bins, no second pass); each epoch's
    statistics also go to `<logdir>/validation_calibration.jsonl` and, as they are, to the
    dashboard's `training_monitor/calibration/validation/<block>`. `ece` keeps each epoch's ECE
    (epoch -> value).

    ```python
    capture = ValidationCaptureCallback(num_classes=10)
    model.fit(..., callbacks=[capture, CalibrationCallback(capture, SummaryWriters("logs/run"))])
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ece: dict[int, float] = {}
        self.diagram = self.renderer(ReliabilityRenderer)

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.calibration is None:
            return
        statistics = {k: v.copy() for k, v in state.calibration.items()}
        stats = reliability(**statistics)
        self.ece[epoch] = stats["ece"]
        draw = self.pictures(epoch, state, stats)
        run_dir = self.writers.logdir

        def work() -> None:
            dashboard_summary.calibration_bins(**statistics, step=epoch, epochs_per_tag=self.epochs_per_tag)
            summaries.scalars(calibration_scalars(stats), epoch)
            calibration_lines.append(run_dir, epoch, statistics, stats)
            for tag, png in draw():
                summaries.png_image(tag, png, epoch)

        self.submit(work)

    def pictures(self, epoch: int, state: EvaluationState, stats: dict | None = None):
        """`draw() -> [(tag, png)]`: the reliability diagram (`stats`: `reliability` of the state's
        calibration, when already computed); None without calibration statistics."""
        if state.calibration is None:
            return None
        stats = reliability(**state.calibration) if stats is None else stats
        title = f"Reliability, {self.epoch_title(epoch)}"
        return lambda: [(block_tag("calibration/reliability", epoch, self.epochs_per_tag),
                         self.diagram.render(stats, title))]

    def rehearsal(self, epoch: int, state: EvaluationState):
        return self.pictures(epoch, state)  # its axes, grid, legends: built once, bars filled in
