"""ConfusionMatrixCallback: the validation confusion matrix as images, every epoch."""

from __future__ import annotations

import json
import os

import numpy as np

from callbacks.base import ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.dashboard import summary as dashboard_summary
from monitor.metrics import confused_pairs, confused_pairs_markdown
from monitor.render import ConfusionHeatmapRenderer, confusion_heatmap
from monitor.runs import MATRICES_FILE

DENSE_MAX_CLASSES = 100  # above: the JSONL lists nonzero cells only


def write_confusion_summaries(cm: np.ndarray, class_names: list[str], title: str, step: int,
                              epochs_per_tag: int = 0, top_pairs: int = 5, renderers=None,
                              split: str = "validation") -> None:
    """Row-normalised and count heatmaps, the most-confused pairs and the raw counts for
    the dashboard (default writer).

    `renderers`: `{"normalized": ConfusionHeatmapRenderer, "counts": ...}` kept for a run
    (each epoch then redraws only what changed); None draws afresh.
    """
    for kind, normalized in (("normalized", True), ("counts", False)):
        if renderers is None:
            png = confusion_heatmap(cm, class_names, f"{title} ({kind})", normalized=normalized)
        else:
            png = renderers[kind].render(cm, f"{title} ({kind})")
        summaries.png_image(
            summaries.block_tag(f"confusion_matrix/{kind}", step, epochs_per_tag), png, step
        )
    dashboard_summary.confusion_counts(cm, class_names, step, split=split)
    if top_pairs:
        pairs = confused_pairs(cm, class_names, top=top_pairs)
        summaries.text(
            summaries.block_tag("text/confused_pairs", step, epochs_per_tag),
            confused_pairs_markdown(pairs), step,
        )


def matrix_record(epoch: int, class_names: list[str], cm: np.ndarray) -> dict:
    """One line of the JSONL file: dense `counts` up to `DENSE_MAX_CLASSES` classes,
    else `nonzero`: `[true, predicted, count]` triples (a 1,000-class matrix is mostly zeros)."""
    record = {"epoch": epoch, "class_names": list(class_names)}
    if len(class_names) <= DENSE_MAX_CLASSES:
        record["counts"] = cm.tolist()
    else:
        record["nonzero"] = dashboard_summary.sparse_cells(cm).tolist()
    return record


def matrix_from_record(record: dict) -> np.ndarray:
    """The (C, C) counts of a `matrix_record` line, dense or sparse."""
    if "counts" in record:
        return np.asarray(record["counts"], dtype=np.int64)
    return dashboard_summary.dense_matrix(record["nonzero"], len(record["class_names"]))


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


class ConfusionMatrixCallback(ValidationSummaryCallback):
    """Writes `confusion_matrix/normalized` and `/counts` images and confused pairs.

    Also appends each epoch's counts to `<logdir>/validation_confusion_matrices.jsonl`.

    ```python
    capture = ValidationCaptureCallback(num_classes=10)
    writers = SummaryWriters("logs/run1")
    cm = ConfusionMatrixCallback(capture, writers, class_names=names)
    model.fit(x, y, validation_split=0.3, callbacks=[capture, cm])
    ```
    """

    def __init__(self, source, writers, class_names, top_pairs: int = 5, **kwargs):
        super().__init__(source, writers, **kwargs)
        if not isinstance(top_pairs, int) or top_pairs < 0:
            raise ValueError(f"Invalid value for argument `top_pairs`. Received: top_pairs={top_pairs}")
        self.class_names = list(class_names)
        self.top_pairs = top_pairs
        self.renderers = {kind: ConfusionHeatmapRenderer(self.class_names, normalized=kind == "normalized")
                          for kind in ("normalized", "counts")}

    def write(self, epoch: int, state: EvaluationState) -> None:
        cm = state.confusion
        title = f"Validation confusion matrix, {self.epoch_title(epoch)}, accuracy {accuracy(cm):.3f}"
        path = os.path.join(self.writers.logdir, MATRICES_FILE)

        def work() -> None:
            write_confusion_summaries(cm, self.class_names, title, epoch,
                                      self.epochs_per_tag, self.top_pairs, self.renderers)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(matrix_record(epoch, self.class_names, cm)) + "\n")

        self.submit(work)
