"""monitoring_callbacks(): the whole monitoring suite as one list for `model.fit`."""

from __future__ import annotations

from dataclasses import replace

import keras

from callbacks.alarms import AlarmsCallback
from callbacks.base import ValidationSummaryCallback
from callbacks.binary_curves import BinaryCurvesCallback
from callbacks.calibration import CalibrationCallback
from callbacks.chief_tensorboard import ChiefTensorBoard
from callbacks.confident_mistakes import ConfidentMistakesCallback
from callbacks.confusion_matrix import ConfusionMatrixCallback
from callbacks.explanations import ExplanationsCallback
from callbacks.per_class_metrics import PerClassMetricsCallback
from callbacks.pr_curves import PRCurvesCallback
from callbacks.prediction_grid import PredictionGridCallback
from callbacks.validation_capture import ValidationCaptureCallback
from monitor.limits import ALARM_LIMITS, AlarmLimits
from monitor.names import check_class_names
from monitor.picture_budget import PictureBudget
from monitor.settings import SuiteOptions
from monitor.writers import SummaryWriters


def close_suite(callbacks) -> None:
    """Wait for every queued image and flush the suite's event files.

    `fit` already does this at its end; call it after a KeyboardInterrupt or
    when you need the files complete right away (interpreter exit also drains).
    """
    for writers in {id(c.writers): c.writers for c in callbacks
                    if isinstance(c, ValidationSummaryCallback)}.values():
        writers.close()


def seconds_on_training_thread(callbacks) -> float:
    """Seconds the suite's callbacks have spent on the training thread so far."""
    return sum(c.seconds_on_training_thread for c in callbacks
               if isinstance(c, ValidationSummaryCallback | ValidationCaptureCallback | AlarmsCallback))


def suite_alarms(callbacks) -> AlarmsCallback | None:
    """The suite's `AlarmsCallback` (its `alerts`), None when the alarms are off."""
    return next((c for c in callbacks if isinstance(c, AlarmsCallback)), None)


def monitoring_callbacks(
    class_names,
    logdir: str,
    *,
    options: SuiteOptions | None = None,
    tensorboard: bool = True,
    histogram_freq: int = 1,
    from_logits: bool | None = None,
    output: str | int | None = None,
    model=None,
    display_transform=None,
    writers: SummaryWriters | None = None,
    alarm_limits: AlarmLimits | None = None,
    explain_layer=None,
    **option_values,
) -> list[keras.callbacks.Callback]:
    """Callbacks that render the validation pass into TensorBoard every epoch.

    ```python
    suite = monitoring_callbacks(class_names, "logs/my-run")
    model.fit(x, y, validation_split=0.3, epochs=10, callbacks=suite)
    suite = monitoring_callbacks(class_names, "logs/run2", grid_size=9, mistakes=0)
    ```
    What it writes is a `SuiteOptions` (`options`, with any of its fields given as
    keywords on top, e.g. `grid_size`, `mistakes`, `threshold`, `head`, `calibration`, `alarms`).
    A plain list (Keras flattens callbacks; a list subclass would not be). Every
    image is in the event files when `fit` returns; after a KeyboardInterrupt call
    `close_suite(suite)` (interpreter exit drains the queue too).
    Writes Keras' own scalars/histograms/graph (`train/`, `validation/`, with
    `tensorboard=True`) and the suite's images, scalars, text and PR curves
    (`monitor/`). Image and text tags hold `epochs_per_tag` epochs each so that
    plain `tensorboard --logdir` serves every epoch (0: one tag per kind).
    Each epoch's raw counts and the `mistakes` most confident mistakes (0: none) also
    go to the `Training monitor` dashboard; `mistakes_grid` of them to a
    `mistakes/most_confident` image. For a model with several outputs, `output`
    (an output name or index) chooses the classifier head the suite reads. Pass the
    built `model` to have such problems raised here, before `fit` (a ValueError naming
    the outputs); without it they are one warning when `fit` starts, and training goes on.
    `alarms` (on by default) says overfitting, not learning, collapse, diverging and
    over-confidence once when each starts and ends (`callbacks.alarms.AlarmsCallback`; thresholds:
    `alarm_limits`, default `monitor.limits.ALARM_LIMITS`) and writes the generalisation gaps.
    `explanations`: Grad-CAM heat maps (`callbacks.explanations`) at `explain_layer` (None: found).
    """
    class_names = check_class_names(class_names, minimum=2)  # strings, non-empty, distinct
    if not isinstance(histogram_freq, int) or histogram_freq < 0:
        raise ValueError(f"Invalid value for argument `histogram_freq`. Received: {histogram_freq=}")
    o = replace(options or SuiteOptions(), **option_values).validate()
    writers = writers or SummaryWriters(logdir)
    writers.pictures = PictureBudget(o.picture_budget)
    capture = ValidationCaptureCallback(len(class_names), sample_slots=max(o.grid_size, o.probability_images),
                                        from_logits=from_logits, mistakes=o.mistakes, threshold=o.threshold,
                                        output=output, head=o.head)
    if model is not None:
        capture.capture.check(model)
    board = [ChiefTensorBoard(log_dir=logdir, histogram_freq=histogram_freq)] if tensorboard else []
    per_epoch = _suite_callbacks(capture, writers, class_names, o, display_transform, alarm_limits)
    # Grad-CAM first among the writers: its epoch's work is the longest (gradients, then two pictures one
    # after the other), so at the end of `fit`, where the queue is drawn side by side, it starts first.
    explanations = _explanations(capture, writers, class_names, o, display_transform, explain_layer)
    return [*board, capture, *explanations, *per_epoch]


def _suite_callbacks(capture, writers, class_names, o: SuiteOptions, display_transform, alarm_limits) -> list:
    """The per-epoch writers `o` asks for, in the order they write: an epoch's calibration and alerts
    before its confusion counts, so that the dashboard, seeing the counts, sees them too."""
    common = dict(every_n_epochs=o.every_n_epochs, epochs_per_tag=o.epochs_per_tag)
    out = []
    if o.calibration:
        out.append(CalibrationCallback(capture, writers, **common))
    if o.alarms:
        out.append(AlarmsCallback(capture, writers, class_names, epochs_per_tag=o.epochs_per_tag,
                                  limits=alarm_limits or ALARM_LIMITS))
    if o.confusion_matrix:
        out.append(ConfusionMatrixCallback(capture, writers, class_names, top_pairs=o.confused_pairs,
                                           **common))
    if o.per_class:
        out.append(PerClassMetricsCallback(capture, writers, class_names, **common))
    if o.prediction_grid and (o.grid_size or o.probability_images):
        out.append(PredictionGridCallback(capture, writers, class_names, grid_size=o.grid_size,
                                          columns=o.grid_columns, probability_images=o.probability_images,
                                          display_transform=display_transform, **common))
    if o.mistakes:
        out.append(ConfidentMistakesCallback(capture, writers, class_names, grid_size=o.mistakes_grid,
                                             columns=o.grid_columns, display_transform=display_transform,
                                             **common))
    if o.pr_curves:
        out.append(PRCurvesCallback(capture, writers, class_names, every_n_epochs=o.every_n_epochs))
        out.append(BinaryCurvesCallback(capture, writers, **common))
    return out


def _explanations(capture, writers, class_names, o: SuiteOptions, display_transform, explain_layer) -> list:
    """The Grad-CAM callback, when `o` asks for it and there are mistakes or a grid to explain."""
    grid_size = o.grid_size if o.prediction_grid else 0
    if not o.explanations or not (o.mistakes or grid_size):
        return []
    return [ExplanationsCallback(capture, writers, class_names, grid_size=grid_size,
                                 mistakes_shown=o.mistakes_grid, explain_layer=explain_layer,
                                 output=capture.capture.output, display_transform=display_transform,
                                 every_n_epochs=o.every_n_epochs, epochs_per_tag=o.epochs_per_tag)]
