"""PerClassMetricsCallback: per-class precision/recall/F1 scalars and a table."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from callbacks.base import ValidationSummaryCallback
from monitor import summaries
from monitor.capture import EvaluationState
from monitor.metrics import averages, per_class, per_class_markdown

PER_CLASS_SCALARS_MAX_CLASSES = 30  # above: no per-class scalar tags (they would flood TensorBoard)
TABLE_ROWS = 10  # above that class count, the table shows the 10 worst and the 10 best classes
PER_CLASS_FILE = "validation_per_class.csv"


def tag_name(name: str) -> str:
    """A class name as a tag component (TensorBoard tags are path-like)."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)


def per_class_scalars(cm: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """`averages/<metric>` values from a confusion matrix, plus `per_class/<metric>/<class>`
    up to `PER_CLASS_SCALARS_MAX_CLASSES` classes: at most 98 tags whatever the class count."""
    out = {}
    if len(class_names) <= PER_CLASS_SCALARS_MAX_CLASSES:
        values = per_class(cm)
        for metric in ("precision", "recall", "f1"):
            for name, value in zip(class_names, values[metric], strict=True):
                out[f"per_class/{metric}/{tag_name(name)}"] = float(value)
    out.update({f"averages/{k}": float(v) for k, v in averages(cm).items()})
    return out


def worst_first_markdown(cm: np.ndarray, class_names: list[str], rows: int = TABLE_ROWS) -> str:
    """The per-class table sorted by F1, worst first: the `rows` worst and the `rows` best
    classes, then the macro/weighted averages."""
    stats, avg = per_class(cm), averages(cm)
    order = np.lexsort((np.arange(len(class_names)), stats["f1"]))
    shown = [("worst", order[:rows]), ("best", order[-rows:][::-1])]
    lines = [f"{len(class_names)} classes, sorted by F1; every class is in `{PER_CLASS_FILE}`.", "",
             "| | class | precision | recall | f1 | support |", "|---|---|---:|---:|---:|---:|"]
    for label, indices in shown:
        for rank, k in enumerate(indices, 1):
            lines.append(f"| {label} {rank} | {class_names[k]} | {stats['precision'][k]:.3f} | "
                         f"{stats['recall'][k]:.3f} | {stats['f1'][k]:.3f} | {int(stats['support'][k])} |")
    total = int(stats["support"].sum())
    for label, suffix in (("macro avg", "macro"), ("weighted avg", "weighted")):
        lines.append(f"| | **{label}** | {avg[f'precision_{suffix}']:.3f} | {avg[f'recall_{suffix}']:.3f}"
                     f" | {avg[f'f1_{suffix}']:.3f} | {total} |")
    return "\n".join(lines)


def per_class_frame(cm: np.ndarray, class_names: list[str], epoch: int) -> pd.DataFrame:
    """Every class's precision, recall, F1 and support at `epoch`, one row per class."""
    stats = per_class(cm)
    return pd.DataFrame({"epoch": epoch, "class": list(class_names),
                         **{k: stats[k] for k in ("precision", "recall", "f1", "support")}})


def write_per_class_summaries(cm: np.ndarray, class_names: list[str], step: int,
                              epochs_per_tag: int = 0, title: str | None = None) -> None:
    """Scalars and the table; above `PER_CLASS_SCALARS_MAX_CLASSES` classes the table is
    worst-first and a `per_class/recall` image shows every class's recall, sorted."""
    summaries.scalars(per_class_scalars(cm, class_names), step)
    large = len(class_names) > PER_CLASS_SCALARS_MAX_CLASSES
    table = worst_first_markdown(cm, class_names) if large else per_class_markdown(cm, class_names)
    summaries.text(summaries.block_tag("text/per_class", step, epochs_per_tag), table, step)
    if large:
        from monitor.render import per_class_recall_bars

        png = per_class_recall_bars(per_class(cm)["recall"], class_names,
                                    title or f"Per-class recall, step {step + 1}")
        summaries.png_image(summaries.block_tag("per_class/recall", step, epochs_per_tag), png, step)


def append_per_class_csv(path: str, cm: np.ndarray, class_names: list[str], epoch: int) -> None:
    per_class_frame(cm, class_names, epoch).to_csv(path, mode="a", index=False, float_format="%.6g",
                                                   header=not os.path.exists(path))


class PerClassMetricsCallback(ValidationSummaryCallback):
    """Writes per-class precision, recall, F1, their macro/weighted averages,
    balanced accuracy, and a markdown table, from the streamed confusion matrix;
    every class's numbers per epoch also go to `<logdir>/validation_per_class.csv`.

    Above 30 classes the per-class scalars give way to a worst-first table and a
    sorted per-class recall image, so TensorBoard's dashboards stay usable.

    ```python
    model.fit(..., callbacks=[capture, PerClassMetricsCallback(capture, writers, names)])
    ```
    """

    def __init__(self, source, writers, class_names, **kwargs):
        super().__init__(source, writers, **kwargs)
        self.class_names = list(class_names)

    def write(self, epoch: int, state: EvaluationState) -> None:
        cm = state.confusion
        title = f"Validation recall per class, {self.epoch_title(epoch)}"
        path = os.path.join(self.writers.logdir, PER_CLASS_FILE)

        def work() -> None:
            write_per_class_summaries(cm, self.class_names, epoch, self.epochs_per_tag, title)
            append_per_class_csv(path, cm, self.class_names, epoch)

        self.submit(work)
