"""Keras callbacks that render each epoch's validation pass into TensorBoard."""

from callbacks.confusion_matrix import ConfusionMatrixCallback
from callbacks.per_class_metrics import PerClassMetricsCallback
from callbacks.pr_curves import PRCurvesCallback
from callbacks.prediction_grid import PredictionGridCallback
from callbacks.suite import MonitoringSuite, monitoring_callbacks
from callbacks.validation_capture import ValidationCaptureCallback

__all__ = [
    "ConfusionMatrixCallback",
    "MonitoringSuite",
    "PRCurvesCallback",
    "PerClassMetricsCallback",
    "PredictionGridCallback",
    "ValidationCaptureCallback",
    "monitoring_callbacks",
]
