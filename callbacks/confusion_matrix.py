"""ConfusionMatrixCallback: the validation confusion matrix as images, every epoch."""

from __future__ import annotations

from callbacks.base import DEFAULTS, ValidationSummaryCallback
from monitor.capture import EvaluationState
from monitor.dashboard import summary as dashboard_summary
from monitor.matrix_summaries import write_confusion
from monitor.metrics import accuracy, multilabel_averages
from monitor.multilabel import multilabel_payload
from monitor.multilabel_summaries import write_multilabel_counts
from monitor.names import check_class_names
from monitor.render import ConfusionHeatmapRenderer
from monitor.runfiles import matrices, multilabel_counts
from monitor.tags import block_tag


class ConfusionMatrixCallback(ValidationSummaryCallback):
    """Writes `confusion_matrix/normalized` and `/counts` images and confused pairs.

    Also appends each epoch's counts to `<logdir>/validation_confusion_matrices.jsonl`.
    A multi-label head has no confusion matrix: it gets `multilabel/counts` (per-label
    P/R/F1 and TP/FP/FN/TN) and `multilabel/cooccurrence` (missed x added labels) images, and
    its counts go to `<logdir>/validation_multilabel_counts.jsonl`.

    ```python
    capture = ValidationCaptureCallback(num_classes=10)
    writers = SummaryWriters("logs/run1")
    cm = ConfusionMatrixCallback(capture, writers, class_names=names)
    model.fit(x, y, validation_split=0.3, callbacks=[capture, cm])
    ```
    """

    def __init__(self, source, writers, class_names, top_pairs: int = DEFAULTS.confused_pairs, **kwargs):
        super().__init__(source, writers, **kwargs)
        if not isinstance(top_pairs, int) or top_pairs < 0:  # the option is `confused_pairs`
            raise ValueError(f"Invalid value for argument `top_pairs`. Received: top_pairs={top_pairs}")
        self.class_names = check_class_names(class_names)
        self.top_pairs = top_pairs
        self.renderers = {kind: self.renderer(ConfusionHeatmapRenderer, self.class_names,
                                              normalized=kind == "normalized")
                          for kind in ("normalized", "counts")}

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.multi_label is not None:
            self.write_multi_label(epoch, state)
            return
        cm = state.confusion
        title = f"Validation confusion matrix, {self.epoch_title(epoch)}, accuracy {accuracy(cm):.3f}"
        run_dir = self.writers.logdir
        scores = None  # a binary head's: the dashboard's threshold slider recomputes the 2x2 from them
        if state.binary_threshold is not None:
            scores = (state.neg_hist[1].copy(), state.pos_hist[1].copy(), float(state.binary_threshold))

        def work() -> None:
            if scores is not None:  # before the counts: a reader seeing an epoch's counts sees these
                dashboard_summary.score_histograms(*scores, step=epoch, epochs_per_tag=self.epochs_per_tag)
            write_confusion(cm, self.class_names, title, epoch, self.epochs_per_tag, self.top_pairs,
                            self.renderers)
            matrices.append(run_dir, epoch, self.class_names, cm)

        self.submit(work)

    def rehearsal(self, epoch: int, state: EvaluationState):
        """The annotated row-normalised heatmap (its colour scale is [0, 1]; the counts heatmap's is
        the largest class's support, unknown before a validation pass, so it is built with the first
        epoch's pictures)."""
        if state.multi_label is not None:
            return None
        title = f"Validation confusion matrix, {self.epoch_title(epoch)} (normalized)"
        return lambda: [(block_tag("confusion_matrix/normalized", epoch, self.epochs_per_tag),
                         self.renderers["normalized"].render(state.confusion, title))]

    def write_multi_label(self, epoch: int, state: EvaluationState) -> None:
        m = state.multi_label
        avg = multilabel_averages(m.tp, m.fp, m.fn, m.count, m.exact)
        title = (f"Validation labels at threshold {m.threshold:g}, {self.epoch_title(epoch)}: exact match "
                 f"{avg['exact_match']:.3f}, Hamming accuracy {avg['hamming_accuracy']:.3f}")
        cooccurrence_title = f"Missed (row) while added (column): images, {self.epoch_title(epoch)}"
        payload, run_dir = multilabel_payload(m), self.writers.logdir

        def work() -> None:
            write_multilabel_counts(m, self.class_names, title, epoch, self.epochs_per_tag,
                                    cooccurrence_title, draw=self.drawn)
            dashboard_summary.multilabel_counts(payload, self.class_names, epoch,
                                                epochs_per_tag=self.epochs_per_tag)
            multilabel_counts.append(run_dir, epoch, self.class_names, payload)

        self.submit(work)
