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
from monitor.limits import EPOCHS_PER_TAG
from monitor.runfiles.matrices import sparse_cells


def confusion_counts(cm: np.ndarray, class_names: Sequence[str], step: int,
                     split: str = "validation", epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's raw confusion counts for the dashboard, in tags of `epochs_per_tag` epochs."""
    if len(class_names) != np.shape(cm)[0]:
        raise ValueError(f"{len(class_names)} class names for a matrix of shape {np.shape(cm)}")
    return tf.summary.write(
        metadata.tag("confusion", split, step, epochs_per_tag), tf.constant(sparse_cells(cm)), step=step,
        metadata=metadata.create_summary_metadata("confusion", split, class_names))


def confident_mistakes(records: Sequence[dict], thumbnails: Sequence[bytes], step: int,
                       split: str = "validation", epochs_per_tag: int = EPOCHS_PER_TAG) -> bool:
    """One epoch's most confident mistakes: `records` (`true`, `predicted`, `confidence`,
    `position`) with one PNG thumbnail each, most confident first."""
    if len(records) != len(thumbnails):
        raise ValueError(f"{len(records)} records but {len(thumbnails)} thumbnails")
    payload = [json.dumps(list(records)).encode("utf-8"), *thumbnails]
    return tf.summary.write(
        metadata.tag("mistakes", split, step, epochs_per_tag), tf.constant(payload, dtype=tf.string),
        step=step, metadata=metadata.create_summary_metadata("mistakes", split))
