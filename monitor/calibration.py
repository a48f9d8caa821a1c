"""Top-label calibration from binned statistics (numpy in, numpy out).

The capture streams, per confidence bin, the count of validation images, the sum of their
confidences (the probability of the predicted class) and the count predicted right: Guo et al.
2017, eq. 3, with `CALIBRATION_BINS` equal-width bins over [0, 1], a confidence c falling in
bin min(floor(c * B), B - 1) (so 1.0 is in the last bin; torchmetrics and the reference
temperature-scaling code bin (lo, hi] instead, which differs only for confidences exactly on
an edge). From them:

- ECE = sum_b (n_b / N) |acc_b - conf_b|, the expected calibration error;
- MCE = max over non-empty bins of |acc_b - conf_b|;
- over-confidence = mean confidence - accuracy (positive: over-confident).
"""

from __future__ import annotations

import numpy as np

from monitor.limits import CALIBRATION_BINS


def bin_index(confidence: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """The bin of each confidence in [0, 1]: floor(c * bins), the last bin closed."""
    return np.clip(np.floor(np.asarray(confidence, np.float64) * bins).astype(np.int64), 0, bins - 1)


def bin_statistics(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """`count`, `confidence_sum`, `correct` per bin from per-sample values (the reference the
    streamed statistics are tested against)."""
    index = bin_index(confidence, bins)
    return {"count": np.bincount(index, minlength=bins).astype(np.int64),
            "confidence_sum": np.bincount(index, weights=np.asarray(confidence, np.float64), minlength=bins),
            "correct": np.bincount(index, weights=np.asarray(correct, np.float64), minlength=bins)}


def reliability(count: np.ndarray, confidence_sum: np.ndarray, correct: np.ndarray) -> dict:
    """Per bin: mean confidence and accuracy (nan for an empty bin), and the share of samples;
    and the summary figures `ece`, `mce`, `over_confidence`, `accuracy`, `confidence`, `count`."""
    count = np.asarray(count, np.float64)
    total = count.sum()
    filled = count > 0
    mean_conf = np.full(count.shape, np.nan)
    acc = np.full(count.shape, np.nan)
    mean_conf[filled] = np.asarray(confidence_sum, np.float64)[filled] / count[filled]
    acc[filled] = np.asarray(correct, np.float64)[filled] / count[filled]
    gap = np.abs(acc - mean_conf)
    if total == 0:
        nan = float("nan")
        return {"confidence": mean_conf, "accuracy": acc, "share": count, "ece": nan, "mce": nan,
                "over_confidence": nan, "mean_confidence": nan, "mean_accuracy": nan, "count": 0}
    mean_c, mean_a = float(np.sum(confidence_sum) / total), float(np.sum(correct) / total)
    return {"confidence": mean_conf, "accuracy": acc, "share": count / total,
            "ece": float(np.sum(count[filled] / total * gap[filled])), "mce": float(gap[filled].max()),
            "over_confidence": mean_c - mean_a, "mean_confidence": mean_c, "mean_accuracy": mean_a,
            "count": int(total)}


def calibration_scalars(stats: dict) -> dict[str, float]:
    """The `calibration/...` scalars of one epoch (finite ones only)."""
    values = {"calibration/ece": stats["ece"], "calibration/mce": stats["mce"],
              "calibration/over_confidence": stats["over_confidence"]}
    return {k: float(v) for k, v in values.items() if np.isfinite(v)}
