"""PerClassMetricsCallback: per-class precision/recall/F1 scalars and a table."""

from __future__ import annotations

from callbacks.base import ValidationSummaryCallback
from monitor.capture import EvaluationState
from monitor.matrix_summaries import write_per_class
from monitor.metrics import multilabel_per_class
from monitor.multilabel_summaries import write_multilabel_per_class
from monitor.names import check_class_names
from monitor.runfiles import per_class_csv


class PerClassMetricsCallback(ValidationSummaryCallback):
    """Writes per-class precision, recall, F1, their macro/weighted averages,
    balanced accuracy, and a markdown table, from the streamed confusion matrix;
    every class's numbers per epoch also go to `<logdir>/validation_per_class.csv`.

    A multi-label head gets the same per-class tags from its per-label counts (support: the
    images holding the label), micro averages too, and `multilabel/exact_match` and
    `multilabel/hamming_accuracy`.

    Above 30 classes the per-class scalars give way to a worst-first table and a
    sorted per-class recall image, so TensorBoard's dashboards stay usable.

    ```python
    model.fit(..., callbacks=[capture, PerClassMetricsCallback(capture, writers, names)])
    ```
    """

    def __init__(self, source, writers, class_names, **kwargs):
        super().__init__(source, writers, **kwargs)
        self.class_names = check_class_names(class_names)

    def write(self, epoch: int, state: EvaluationState) -> None:
        if state.multi_label is not None:
            self.write_multi_label(epoch, state)
            return
        cm = state.confusion
        title = f"Validation recall per class, {self.epoch_title(epoch)}"
        run_dir = self.writers.logdir

        def work() -> None:
            write_per_class(cm, self.class_names, epoch, self.epochs_per_tag, title, draw=self.drawn)
            per_class_csv.append(run_dir, cm, self.class_names, epoch)

        self.submit(work)

    def write_multi_label(self, epoch: int, state: EvaluationState) -> None:
        m = state.multi_label
        title = f"Validation recall per label, {self.epoch_title(epoch)}"
        run_dir = self.writers.logdir

        def work() -> None:
            write_multilabel_per_class(m, self.class_names, epoch, self.epochs_per_tag, title,
                                       draw=self.drawn)
            per_class_csv.append_stats(run_dir, multilabel_per_class(m.tp, m.fp, m.fn), self.class_names,
                                       epoch)

        self.submit(work)
