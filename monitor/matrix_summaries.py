"""The summaries of one confusion matrix: a validation epoch's (from the callbacks) or the test
split's (at the end of a run). Pure functions into the current default `tf.summary` writer.

```python
with writer.as_default():
    write_confusion(cm, names, "Test confusion matrix", step=30, split="test")
    write_per_class(cm, names, step=30)
```
"""

from __future__ import annotations

import numpy as np

from monitor import summaries
from monitor.dashboard import summary as dashboard_summary
from monitor.limits import PER_CLASS_SCALARS_MAX_CLASSES, TABLE_ROWS
from monitor.metrics import (
    averages,
    confused_pairs,
    confused_pairs_markdown,
    per_class,
    per_class_markdown,
    worst_first_markdown,
)
from monitor.runfiles import per_class_csv
from monitor.tags import block_tag, class_tag


def write_confusion(cm: np.ndarray, class_names: list[str], title: str, step: int,
                    epochs_per_tag: int = 0, top_pairs: int = 5, renderers=None,
                    split: str = "validation") -> None:
    """Row-normalised and count heatmaps, the most-confused pairs and the raw counts for
    the dashboard.

    `renderers`: `{"normalized": ConfusionHeatmapRenderer, "counts": ...}` kept for a run
    (each epoch then redraws only what changed); None draws afresh.
    """
    from monitor.render import confusion_heatmap

    for kind, normalized in (("normalized", True), ("counts", False)):
        if renderers is None:
            png = confusion_heatmap(cm, class_names, f"{title} ({kind})", normalized=normalized)
        else:
            png = renderers[kind].render(cm, f"{title} ({kind})")
        summaries.png_image(block_tag(f"confusion_matrix/{kind}", step, epochs_per_tag), png, step)
    dashboard_summary.confusion_counts(cm, class_names, step, split=split, epochs_per_tag=epochs_per_tag)
    if top_pairs:
        pairs = confused_pairs(cm, class_names, top=top_pairs)
        summaries.text(block_tag("text/confused_pairs", step, epochs_per_tag),
                       confused_pairs_markdown(pairs), step)


def per_class_scalars(cm: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """`averages/<metric>` values from a confusion matrix, plus `per_class/<metric>/<class>`
    up to `PER_CLASS_SCALARS_MAX_CLASSES` classes: at most 98 tags whatever the class count."""
    out = {}
    if len(class_names) <= PER_CLASS_SCALARS_MAX_CLASSES:
        values = per_class(cm)
        for metric in ("precision", "recall", "f1"):
            for name, value in zip(class_names, values[metric], strict=True):
                out[f"per_class/{metric}/{class_tag(name)}"] = float(value)
    out.update({f"averages/{k}": float(v) for k, v in averages(cm).items()})
    return out


def per_class_table(cm: np.ndarray, class_names: list[str]) -> str:
    """The per-class markdown table; above `PER_CLASS_SCALARS_MAX_CLASSES` classes, worst first."""
    if len(class_names) > PER_CLASS_SCALARS_MAX_CLASSES:
        return worst_first_markdown(cm, class_names, TABLE_ROWS, per_class_csv.FILE)
    return per_class_markdown(cm, class_names)


def write_per_class(cm: np.ndarray, class_names: list[str], step: int,
                    epochs_per_tag: int = 0, title: str | None = None, draw=lambda fn: fn) -> None:
    """Scalars and the table; above `PER_CLASS_SCALARS_MAX_CLASSES` classes the table is
    worst-first and a `per_class/recall` image shows every class's recall, sorted. `draw(fn)`
    gives the callable that draws picture function `fn` (`monitor.drawing`; here by default)."""
    summaries.scalars(per_class_scalars(cm, class_names), step)
    summaries.text(block_tag("text/per_class", step, epochs_per_tag), per_class_table(cm, class_names), step)
    if len(class_names) > PER_CLASS_SCALARS_MAX_CLASSES:
        from monitor.render import per_class_recall_bars

        png = draw(per_class_recall_bars)(per_class(cm)["recall"], class_names,
                                          title or f"Per-class recall, step {step + 1}")
        summaries.png_image(block_tag("per_class/recall", step, epochs_per_tag), png, step)
