"""PRCurvesCallback: one-vs-rest precision-recall curves per class."""

from __future__ import annotations

import numpy as np

from callbacks.base import ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.limits import PER_CLASS_SCALARS_MAX_CLASSES
from monitor.limits import PR_CURVES_MAX_CLASSES as MAX_CURVE_CLASSES
from monitor.limits import PR_CURVES_WORST as WORST_CLASSES
from monitor.metrics import multilabel_per_class, per_class, pr_curve_counts
from monitor.names import check_class_names
from monitor.tags import block_tag, class_tag


class PRCurvesCallback(ValidationSummaryCallback):
    """Writes `pr_curves/<class>` for TensorBoard's PR-curve plugin from the
    thresholded counts streamed during validation (no second prediction pass).

    Up to 30 classes, one curve per class. Above, `pr_curves/micro_average`
    plus the 10 classes of lowest F1 that epoch; at most 30 distinct classes
    get a curve in a run (then the 10 worst among those), so the tags stay bounded.
    A multi-label head's curves are per label (its positives against the images without it).

    ```python
    model.fit(..., callbacks=[capture, PRCurvesCallback(capture, writers, names)])
    ```
    """

    def __init__(self, source, writers, class_names, **kwargs):
        kwargs.setdefault("epochs_per_tag", 0)  # the PR plugin has its own step slider
        super().__init__(source, writers, **kwargs)
        self.class_names = check_class_names(class_names)
        self._curve_classes: list[int] = []  # classes given a curve so far (large class counts)

    def classes_to_plot(self, cm: np.ndarray, f1: np.ndarray | None = None) -> list[int]:
        """Every class, or the worst by F1 (`f1`, else the matrix's; bounded over the run) above
        the class limit."""
        c = len(self.class_names)
        if c <= PER_CLASS_SCALARS_MAX_CLASSES:
            return list(range(c))
        order = np.lexsort((np.arange(c), per_class(cm)["f1"] if f1 is None else f1))
        if len(self._curve_classes) < MAX_CURVE_CLASSES:
            fresh = [int(k) for k in order if int(k) not in self._curve_classes]
            worst = [int(k) for k in order[:WORST_CLASSES]]
            room = MAX_CURVE_CLASSES - len(self._curve_classes)
            self._curve_classes += [k for k in worst if k in fresh][:room]
        allowed = set(self._curve_classes)
        return [int(k) for k in order if int(k) in allowed][:WORST_CLASSES]

    def write(self, epoch: int, state: EvaluationState) -> None:
        pos, neg = state.pos_hist, state.neg_hist
        m = state.multi_label
        chosen = self.classes_to_plot(state.confusion,
                                      None if m is None else multilabel_per_class(m.tp, m.fp, m.fn)["f1"])
        micro = len(self.class_names) > PER_CLASS_SCALARS_MAX_CLASSES

        def work() -> None:
            counts = pr_curve_counts(pos[chosen], neg[chosen])
            for i, c in enumerate(chosen):
                summaries.pr_curve(
                    block_tag(f"pr_curves/{class_tag(self.class_names[c])}", epoch,
                                        self.epochs_per_tag),
                    {k: v[i] for k, v in counts.items() if k != "thresholds"}, epoch,
                )
            if micro:
                total = pr_curve_counts(pos.sum(0, keepdims=True), neg.sum(0, keepdims=True))
                summaries.pr_curve(
                    block_tag("pr_curves/micro_average", epoch, self.epochs_per_tag),
                    {k: v[0] for k, v in total.items() if k != "thresholds"}, epoch,
                )

        self.submit(work)
