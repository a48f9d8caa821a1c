"""PRCurvesCallback: one-vs-rest precision-recall curves per class."""

from __future__ import annotations

from callbacks.base import SUBDIR, ValidationSummaryCallback
from callbacks.per_class_metrics import tag_name
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.metrics import pr_curve_counts


class PRCurvesCallback(ValidationSummaryCallback):
    """Writes `pr_curves/<class>` for TensorBoard's PR-curve plugin from the
    thresholded counts streamed during validation (no second prediction pass).

    ```python
    model.fit(..., callbacks=[capture, PRCurvesCallback(capture, writers, names)])
    ```
    """

    def __init__(self, source, writers, class_names, **kwargs):
        kwargs.setdefault("epochs_per_tag", 0)  # the PR plugin has its own step slider
        super().__init__(source, writers, **kwargs)
        self.class_names = list(class_names)

    def write(self, epoch: int, state: EvaluationState) -> None:
        pos, neg = state.pos_hist, state.neg_hist

        def work() -> None:
            counts = pr_curve_counts(pos, neg)
            for c, name in enumerate(self.class_names):
                summaries.pr_curve(
                    summaries.block_tag(f"pr_curves/{tag_name(name)}", epoch, self.epochs_per_tag),
                    {k: v[c] for k, v in counts.items() if k != "thresholds"}, epoch,
                )

        self.writers.submit(SUBDIR, work)
