"""A numpy reference of the PR-curve bucketing the capture does in TensorFlow (tests only)."""

from __future__ import annotations

import numpy as np


def pr_bucket_indices(scores: np.ndarray, num_thresholds: int) -> np.ndarray:
    """Bucket of each score: ``floor(clip(s, 0, 1) * (T - 1))`` clipped to [0, T-1].

    The product is computed in the scores' own float dtype (float32 scores ->
    float32 math), exactly like ``tf.floor(p * (T - 1))`` in TensorBoard's
    ``pr_curve`` op, so a TensorFlow implementation can match bit for bit.
    """
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    scale = np.asarray(num_thresholds - 1, dtype=scores.dtype)
    clipped = np.clip(np.nan_to_num(scores, nan=0.0), 0, 1)  # NaN -> bucket 0
    buckets = np.floor(clipped * scale).astype(np.int64)
    return np.clip(buckets, 0, num_thresholds - 1)


def pr_bucket_histograms(
    labels: np.ndarray, probs: np.ndarray, num_thresholds: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest score histograms: the reference spec for streaming versions.

    ``labels`` int (N,), ``probs`` (N, C). Returns int64 ``(pos_hist, neg_hist)``
    of shape (C, T): ``pos_hist[c, t]`` counts samples with label ``c`` whose
    ``probs[:, c]`` falls in bucket ``t`` (see :func:`pr_bucket_indices`);
    ``neg_hist[c, t]`` the same for samples with another label.
    """
    if num_thresholds < 2:
        raise ValueError("num_thresholds must be >= 2")
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs must be (N, C) with N={labels.shape[0]}")
    n, c = probs.shape
    buckets = pr_bucket_indices(probs, num_thresholds)  # (N, C)
    is_pos = labels[:, None] == np.arange(c)[None, :]  # (N, C)
    flat = np.arange(c)[None, :] * num_thresholds + buckets  # (N, C)
    size = c * num_thresholds
    pos = np.bincount(flat[is_pos], minlength=size).reshape(c, num_thresholds)
    neg = np.bincount(flat[~is_pos], minlength=size).reshape(c, num_thresholds)
    return pos.astype(np.int64), neg.astype(np.int64)
