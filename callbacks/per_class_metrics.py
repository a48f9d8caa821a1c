"""PerClassMetricsCallback: per-class precision/recall/F1 scalars and a table."""

from __future__ import annotations

import re

import numpy as np

from callbacks.base import SUBDIR, ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.metrics import averages, per_class, per_class_markdown


def tag_name(name: str) -> str:
    """A class name as a tag component (TensorBoard tags are path-like)."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)


def per_class_scalars(cm: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """`per_class/<metric>/<class>` and `averages/<metric>` values from a confusion matrix."""
    values = per_class(cm)
    out = {}
    for metric in ("precision", "recall", "f1"):
        for name, value in zip(class_names, values[metric], strict=True):
            out[f"per_class/{metric}/{tag_name(name)}"] = float(value)
    out.update({f"averages/{k}": float(v) for k, v in averages(cm).items()})
    return out


def write_per_class_summaries(cm: np.ndarray, class_names: list[str], step: int,
                              epochs_per_tag: int = 0) -> None:
    summaries.scalars(per_class_scalars(cm, class_names), step)
    summaries.text(summaries.block_tag("text/per_class", step, epochs_per_tag),
                   per_class_markdown(cm, class_names), step)


class PerClassMetricsCallback(ValidationSummaryCallback):
    """Writes per-class precision, recall, F1, their macro/weighted averages,
    balanced accuracy, and a markdown table, from the streamed confusion matrix.

    ```python
    model.fit(..., callbacks=[capture, PerClassMetricsCallback(capture, writers, names)])
    ```
    """

    def __init__(self, source, writers, class_names, **kwargs):
        super().__init__(source, writers, **kwargs)
        self.class_names = list(class_names)

    def write(self, epoch: int, state: EvaluationState) -> None:
        cm = state.confusion
        self.writers.submit(
            SUBDIR, lambda: write_per_class_summaries(cm, self.class_names, epoch, self.epochs_per_tag)
        )
