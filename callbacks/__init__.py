"""Keras callbacks that render each epoch's validation pass into TensorBoard.

They import the library (`monitor`), never the other way round.
"""

from callbacks.alarms import AlarmsCallback
from callbacks.chief_tensorboard import ChiefTensorBoard
from callbacks.confident_mistakes import ConfidentMistakesCallback
from callbacks.confusion_matrix import ConfusionMatrixCallback
from callbacks.epoch_backup import EpochBackupCallback
from callbacks.non_finite_loss import StopOnNonFiniteLoss
from callbacks.per_class_metrics import PerClassMetricsCallback
from callbacks.pr_curves import PRCurvesCallback
from callbacks.prediction_grid import PredictionGridCallback
from callbacks.reraise_interrupt import ReRaiseInterrupt
from callbacks.suite import close_suite, monitoring_callbacks, seconds_on_training_thread, suite_alarms
from callbacks.validation_capture import ValidationCaptureCallback
from monitor.settings import SuiteOptions

__all__ = [
    "AlarmsCallback",
    "ChiefTensorBoard",
    "ConfidentMistakesCallback",
    "ConfusionMatrixCallback",
    "EpochBackupCallback",
    "PRCurvesCallback",
    "PerClassMetricsCallback",
    "PredictionGridCallback",
    "ReRaiseInterrupt",
    "StopOnNonFiniteLoss",
    "SuiteOptions",
    "ValidationCaptureCallback",
    "close_suite",
    "monitoring_callbacks",
    "seconds_on_training_thread",
    "suite_alarms",
]
