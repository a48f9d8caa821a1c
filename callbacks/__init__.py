"""Keras callbacks that render each epoch's validation pass into TensorBoard."""

from callbacks.confusion_matrix import ConfusionMatrixCallback
from callbacks.per_class_metrics import PerClassMetricsCallback
from callbacks.pr_curves import PRCurvesCallback
from callbacks.prediction_grid import PredictionGridCallback
from callbacks.suite import close_suite, monitoring_callbacks, seconds_on_training_thread
from callbacks.validation_capture import ValidationCaptureCallback

__all__ = [
    "ConfusionMatrixCallback",
    "PRCurvesCallback",
    "PerClassMetricsCallback",
    "PredictionGridCallback",
    "ValidationCaptureCallback",
    "close_suite",
    "monitoring_callbacks",
    "seconds_on_training_thread",
]
