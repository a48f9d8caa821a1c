"""The summaries of a multi-label validation pass. Pure functions into the current default
`tf.summary` writer, like `matrix_summaries` for a confusion matrix.

```python
with writer.as_default():
    write_multilabel_counts(counts, names, "Validation labels, epoch 3/10", step=2)
    write_multilabel_per_class(counts, names, step=2)
```
"""

from __future__ import annotations

from monitor import summaries
from monitor.limits import PER_CLASS_SCALARS_MAX_CLASSES, TABLE_ROWS
from monitor.metrics import (
    multilabel_averages,
    multilabel_per_class,
    stats_markdown,
    stats_worst_first_markdown,
)
from monitor.multilabel import MultiLabelCounts
from monitor.runfiles import per_class_csv
from monitor.tags import block_tag, class_tag

AVERAGE_KINDS = ("micro", "macro", "weighted")
COOCCURRENCE_TITLE = "Missed label (row) while added label (column): images"


def multilabel_scalars(m: MultiLabelCounts, class_names: list[str]) -> dict[str, float]:
    """`per_class/<metric>/<class>` (up to `PER_CLASS_SCALARS_MAX_CLASSES` labels),
    `averages/{precision,recall,f1}_{micro,macro,weighted}`, `multilabel/exact_match` and
    `multilabel/hamming_accuracy`."""
    out = {}
    if len(class_names) <= PER_CLASS_SCALARS_MAX_CLASSES:
        values = multilabel_per_class(m.tp, m.fp, m.fn)
        for metric in ("precision", "recall", "f1"):
            for name, value in zip(class_names, values[metric], strict=True):
                out[f"per_class/{metric}/{class_tag(name)}"] = float(value)
    avg = multilabel_averages(m.tp, m.fp, m.fn, m.count, m.exact)
    out.update({f"averages/{metric}_{kind}": avg[f"{metric}_{kind}"]
                for metric in ("precision", "recall", "f1") for kind in AVERAGE_KINDS})
    out["multilabel/exact_match"] = avg["exact_match"]
    out["multilabel/hamming_accuracy"] = avg["hamming_accuracy"]
    return out


def multilabel_table(m: MultiLabelCounts, class_names: list[str]) -> str:
    """The per-label markdown table (support: the images holding the label) with micro, macro and
    weighted rows, then exact match and Hamming accuracy; worst first above the scalar limit."""
    stats = multilabel_per_class(m.tp, m.fp, m.fn)
    avg = multilabel_averages(m.tp, m.fp, m.fn, m.count, m.exact)
    if len(class_names) > PER_CLASS_SCALARS_MAX_CLASSES:
        table = stats_worst_first_markdown(stats, avg, class_names, TABLE_ROWS, per_class_csv.FILE,
                                           AVERAGE_KINDS)
    else:
        table = stats_markdown(stats, avg, class_names, AVERAGE_KINDS)
    return (f"{table}\n\nMulti-label, threshold {m.threshold:g}, {m.count} images: exact match "
            f"{avg['exact_match']:.3f}, Hamming accuracy {avg['hamming_accuracy']:.3f}. Support: the "
            "images holding the label.")


def write_multilabel_per_class(m: MultiLabelCounts, class_names: list[str], step: int,
                               epochs_per_tag: int = 0, title: str | None = None, draw=lambda fn: fn) -> None:
    """Scalars and the table; above `PER_CLASS_SCALARS_MAX_CLASSES` labels also the
    `per_class/recall` image, as for a confusion matrix."""
    summaries.scalars(multilabel_scalars(m, class_names), step)
    summaries.text(block_tag("text/per_class", step, epochs_per_tag), multilabel_table(m, class_names), step)
    if len(class_names) > PER_CLASS_SCALARS_MAX_CLASSES:
        from monitor.render import per_class_recall_bars

        png = draw(per_class_recall_bars)(multilabel_per_class(m.tp, m.fp, m.fn)["recall"], class_names,
                                          title or f"Per-label recall, step {step + 1}")
        summaries.png_image(block_tag("per_class/recall", step, epochs_per_tag), png, step)


def write_multilabel_counts(m: MultiLabelCounts, class_names: list[str], title: str, step: int,
                            epochs_per_tag: int = 0, cooccurrence_title: str = COOCCURRENCE_TITLE,
                            draw=lambda fn: fn) -> None:
    """`multilabel/counts` (per-label P/R/F1 bars and TP/FP/FN/TN) and, when computed,
    `multilabel/cooccurrence` (missed x added label counts) images; `draw` as `write_per_class`'s."""
    from monitor.render import cooccurrence_png, label_counts_png

    png = draw(label_counts_png)(m.tp, m.fp, m.fn, m.tn, class_names, title)
    summaries.png_image(block_tag("multilabel/counts", step, epochs_per_tag), png, step)
    if m.cooccurrence is not None:
        png = draw(cooccurrence_png)(m.cooccurrence, class_names, cooccurrence_title)
        summaries.png_image(block_tag("multilabel/cooccurrence", step, epochs_per_tag), png, step)
