"""Writers of the dashboard's data: pure functions into the current default `tf.summary` writer.

```python
with tf.summary.create_file_writer("logs/run1/monitor").as_default():
    summary.confusion_counts(cm, class_names, step=epoch)          # validation
    summary.confident_mistakes(mistakes, thumbnails, step=epoch)
```
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from monitor.dashboard import metadata


def sparse_cells(cm: np.ndarray) -> np.ndarray:
    """The nonzero cells of a (C, C) count matrix as int64 (K, 3) rows (true, predicted, count)."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (C, C) matrix, got shape {cm.shape}")
    rows, cols = np.nonzero(cm)
    return np.stack([rows, cols, cm[rows, cols]], axis=1).astype(np.int64).reshape(-1, 3)


def dense_matrix(cells: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse of `sparse_cells`."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    cells = np.asarray(cells, np.int64).reshape(-1, 3)
    cm[cells[:, 0], cells[:, 1]] = cells[:, 2]
    return cm


def confusion_counts(cm: np.ndarray, class_names: Sequence[str], step: int,
                     split: str = "validation") -> bool:
    """One epoch's raw confusion counts for the dashboard."""
    if len(class_names) != np.shape(cm)[0]:
        raise ValueError(f"{len(class_names)} class names for a matrix of shape {np.shape(cm)}")
    return tf.summary.write(
        metadata.tag("confusion", split, step), tf.constant(sparse_cells(cm)), step=step,
        metadata=metadata.create_summary_metadata("confusion", split, class_names))


def confident_mistakes(records: Sequence[dict], thumbnails: Sequence[bytes], step: int,
                       split: str = "validation") -> bool:
    """One epoch's most confident mistakes: `records` (`true`, `predicted`, `confidence`,
    `position`) with one PNG thumbnail each, most confident first."""
    if len(records) != len(thumbnails):
        raise ValueError(f"{len(records)} records but {len(thumbnails)} thumbnails")
    payload = [json.dumps(list(records)).encode("utf-8"), *thumbnails]
    return tf.summary.write(
        metadata.tag("mistakes", split, step), tf.constant(payload, dtype=tf.string), step=step,
        metadata=metadata.create_summary_metadata("mistakes", split))
