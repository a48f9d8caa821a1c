"""BinaryCurvesCallback: ROC and PR AUCs, the best-F1 threshold and the ROC curve of a binary head."""

from __future__ import annotations

import math

import numpy as np

from callbacks.base import ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.metrics import average_precision, best_f1, binary_point, roc_auc, roc_points
from monitor.render.roc import roc_curve_png
from monitor.tags import block_tag


def binary_scalars(pos: np.ndarray, neg: np.ndarray, confusion: np.ndarray) -> dict[str, float]:
    """The `binary/...` scalars of one epoch from the positive class's histograms (T,) and the
    confusion matrix at the user's threshold (exact, not bucketed). Undefined AUCs are left out."""
    threshold, f1 = best_f1(pos, neg)
    at = binary_point(confusion[1, 1], confusion[0, 1], confusion[0, 0], confusion[1, 0])
    values = {"binary/roc_auc": roc_auc(pos, neg), "binary/pr_auc": average_precision(pos, neg),
              "binary/best_f1": f1, "binary/best_f1_threshold": threshold,
              "binary/precision_at_threshold": at["precision"],
              "binary/recall_at_threshold": at["recall"], "binary/f1_at_threshold": at["f1"]}
    return {k: v for k, v in values.items() if math.isfinite(v)}


class BinaryCurvesCallback(ValidationSummaryCallback):
    """For a one-unit binary head, every validated epoch: scalars `binary/roc_auc`,
    `binary/pr_auc` (average precision), `binary/best_f1`, `binary/best_f1_threshold` and, at
    the user's threshold, `binary/precision_at_threshold`, `binary/recall_at_threshold`,
    `binary/f1_at_threshold`; and the image `binary/roc/<block>`. All from the histograms
    streamed during validation (101 thresholds), no second prediction pass. Other heads: nothing.
    """

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.binary_threshold is None:
            return
        pos, neg = state.pos_hist[1].copy(), state.neg_hist[1].copy()
        confusion, user = state.confusion.copy(), float(state.binary_threshold)
        title = f"ROC, {self.epoch_title(epoch)}"

        def work() -> None:
            values = binary_scalars(pos, neg, confusion)
            summaries.scalars(values, epoch)
            r = roc_points(pos, neg)
            at = binary_point(confusion[1, 1], confusion[0, 1], confusion[0, 0], confusion[1, 0])
            best_t = values["binary/best_f1_threshold"]
            k = int(round(best_t * (len(pos) - 1)))
            marks = [(f"threshold {user:g}", at["fpr"], at["tpr"]),
                     (f"best F1 {values['binary/best_f1']:.3f} at {best_t:.2f}", r["fpr"][k], r["tpr"][k])]
            auc = values.get("binary/roc_auc", float("nan"))
            png = self.drawn(roc_curve_png)(r["fpr"], r["tpr"], auc, title, marks)
            summaries.png_image(block_tag("binary/roc", epoch, self.epochs_per_tag), png, epoch)

        self.submit(work)
