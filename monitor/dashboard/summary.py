"""Writers of the dashboard's data: pure functions into the current default writer
(`monitor.summaries.write`: the suite's own event-file writer, or a `tf.summary` one).

```python
with EventFileWriter("logs/run1/monitor").as_default():   # or a tf.summary writer
    summary.confusion_counts(cm, class_names, step=epoch)          # validation
    summary.confident_mistakes(mistakes, thumbnails, step=epoch)
    summary.score_histograms(neg_hist, pos_hist, threshold=0.5, step=epoch)  # binary heads
    summary.multilabel_counts(counts, class_names, step=epoch)   # multi-label heads
    summary.calibration_bins(count, confidence_sum, correct, step=epoch)  # reliability statistics
    summary.alerts([alert.as_dict() for alert in new], step=epoch)       # the epoch's alerts
```
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from monitor import summaries
from monitor.dashboard import metadata
from monitor.limits import EPOCHS_PER_TAG
from monitor.runfiles.matrices import sparse_cells


def confusion_counts(cm: np.ndarray, class_names: Sequence[str], step: int,
                     split: str = "validation", epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's raw confusion counts for the dashboard, in tags of `epochs_per_tag` epochs."""
    if len(class_names) != np.shape(cm)[0]:
        raise ValueError(f"{len(class_names)} class names for a matrix of shape {np.shape(cm)}")
    return summaries.write(
        metadata.tag("confusion", split, step, epochs_per_tag), sparse_cells(cm), step=step,
        metadata=metadata.create_summary_metadata("confusion", split, class_names))


def confident_mistakes(records: Sequence[dict], thumbnails: Sequence[bytes], step: int,
                       split: str = "validation", epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's most confident mistakes: `records` (`true`, `predicted`, `confidence`,
    `position`) with one PNG thumbnail each, most confident first."""
    if len(records) != len(thumbnails):
        raise ValueError(f"{len(records)} records but {len(thumbnails)} thumbnails")
    payload = [json.dumps(list(records)).encode("utf-8"), *thumbnails]
    return summaries.write(
        metadata.tag("mistakes", split, step, epochs_per_tag), payload, step=step,
        metadata=metadata.create_summary_metadata("mistakes", split))


def score_histograms(neg_hist: np.ndarray, pos_hist: np.ndarray, threshold: float, step: int,
                     split: str = "validation", epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's histograms (T,) of a binary head's score p(positive) over the true negatives
    and the true positives, bucket b = floor(p * (T - 1)); `threshold` is the user's."""
    neg, pos = np.asarray(neg_hist), np.asarray(pos_hist)
    if neg.ndim != 1 or neg.shape != pos.shape or len(neg) < 2:
        raise ValueError(f"Histograms of shapes {neg.shape} and {pos.shape}: two of one shape (T,), T >= 2")
    hists = np.stack([neg, pos]).astype(np.int64)
    meta = metadata.create_summary_metadata("scores", split, threshold=float(threshold),
                                            num_thresholds=len(neg))
    return summaries.write(metadata.tag("scores", split, step, epochs_per_tag), hists, step=step,
                           metadata=meta)


MULTILABEL_PER_LABEL = ("tp", "fp", "fn", "tn")


def multilabel_counts(counts: dict, class_names: Sequence[str], step: int,
                      split: str = "validation", epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's multi-label counts: `{"count", "exact", "tp", "fp", "fn", "tn", "cooccurrence",
    "threshold"}` (metadata.py's format), as JSON in a string scalar."""
    for key in MULTILABEL_PER_LABEL:
        if len(counts[key]) != len(class_names):
            raise ValueError(f"{len(counts[key])} values of {key!r} for {len(class_names)} class names")
    body = {"count": int(counts["count"]), "exact": int(counts["exact"]),
            **{key: [int(v) for v in counts[key]] for key in MULTILABEL_PER_LABEL},
            "cooccurrence": None if counts.get("cooccurrence") is None
            else [[int(i), int(j), int(n)] for i, j, n in counts["cooccurrence"]],
            "threshold": float(counts["threshold"])}
    payload = json.dumps(body)
    meta = metadata.create_summary_metadata("multilabel", split, class_names, threshold=body["threshold"])
    return summaries.write(metadata.tag("multilabel", split, step, epochs_per_tag), payload, step=step,
                           metadata=meta)


def calibration_bins(count, confidence_sum, correct, step: int, split: str = "validation",
                     epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's top-label reliability statistics (B,) each: the images, their confidences' sum and
    the images predicted right per confidence bin, as a float64 (3, B) tensor (metadata.py)."""
    rows = [np.asarray(v, np.float64) for v in (count, confidence_sum, correct)]
    shapes = [r.shape for r in rows]
    if len(set(shapes)) != 1 or rows[0].ndim != 1 or not len(rows[0]):
        raise ValueError(f"Calibration statistics of shapes {shapes}: three of one shape (B,), B >= 1")
    meta = metadata.create_summary_metadata("calibration", split, bins=len(rows[0]))
    return summaries.write(metadata.tag("calibration", split, step, epochs_per_tag),
                           np.stack(rows), step=step, metadata=meta)


def alerts(records: Sequence[dict], step: int, epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """The alerts said at one epoch's end (`{"epoch", "rule", "event", "message", "numbers"}` each, as
    `metrics.json` lists them), as JSON in a string scalar; non-finite numbers become null."""
    for record in records:
        if record.get("event") not in ("started", "ended") or not isinstance(record.get("message"), str):
            raise ValueError(f"Not an alert: {record!r}")
    payload = json.dumps(_plain(list(records)), allow_nan=False)
    return summaries.write(metadata.tag("alerts", "validation", step, epochs_per_tag), payload, step=step,
                           metadata=metadata.create_summary_metadata("alerts", "validation"))


def _plain(value):
    """`value` with numpy scalars and arrays as plain JSON values, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
