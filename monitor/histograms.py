"""Weight histograms as TensorBoard's histogram plugin stores them, computed with numpy.

`buckets` gives the `[k, 3]` (left edge, right edge, count) float64 table that
`tf.summary.histogram` computes (same edges, same counts, same edge cases), in O(N) numpy
instead of TensorBoard's N x k one-hot TensorFlow ops.
"""

from __future__ import annotations

import numpy as np

BUCKETS = 30  # tensorboard.plugins.histogram.summary_v2.DEFAULT_BUCKET_COUNT


def buckets(values, bucket_count: int = BUCKETS) -> np.ndarray:
    """The `(bucket_count, 3)` float64 histogram of `values` (any shape): equal-width buckets from
    the minimum to the maximum, the last one closed; all zeros for no values; for a single
    repeated value every edge is that value and the last bucket holds them all."""
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if data.size == 0:
        return np.zeros((bucket_count, 3))
    low, high = data.min(), data.max()
    if high == low:
        counts = np.zeros(bucket_count)
        counts[-1] = data.size
        return np.stack([np.full(bucket_count, high), np.full(bucket_count, high), counts], axis=1)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN or infinite weights: as TensorBoard's
        width = (high - low) / bucket_count
        index = np.minimum(np.floor((data - low) / width).astype(np.int64), bucket_count - 1)
        edges = np.linspace(low, high, bucket_count + 1)
    edges[0], edges[-1] = low, high  # exactly, as TensorFlow's linspace and TensorBoard give them
    # TensorBoard one-hots the indices: a value whose index is not a bucket (NaN) is not counted
    counts = np.bincount(index[index >= 0], minlength=bucket_count).astype(np.float64)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)
