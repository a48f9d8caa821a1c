"""Synthetic dashboard logs: confusion counts and mistakes for many epochs, as the suite writes them.

Used by the dashboard tests (150 epochs, 1,000 classes) and `bench/dashboard.py`.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from monitor.dashboard import summary


def synthetic_matrix(classes: int, epoch: int, epochs: int, per_class: int, seed: int) -> np.ndarray:
    """Counts that get better with the epoch: accuracy from 30% to 90%, errors spread over
    a few neighbouring classes; every row sums to `per_class`."""
    rng = np.random.default_rng(seed * 100_003 + epoch)
    right = 0.3 + 0.6 * epoch / max(epochs - 1, 1)
    cm = np.zeros((classes, classes), np.int64)
    for t in range(classes):
        probs = np.zeros(classes)
        probs[[(t + 1) % classes, (t + 2) % classes, (t + 7) % classes]] = (1 - right) / 3
        probs[t] += right
        cm[t] = rng.multinomial(per_class, probs / probs.sum())
    return cm


def thumbnail(seed: int, size: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def write_run(run_dir: Path, classes: int, epochs: int, per_class: int = 10, seed: int = 0,
              mistakes: int = 4, split: str = "validation") -> list[np.ndarray]:
    """Write `epochs` epochs into `run_dir` (a TensorBoard run); returns the matrices written."""
    names = [f"class_{i:04d}" for i in range(classes)]
    matrices = []
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        for epoch in range(epochs):
            cm = synthetic_matrix(classes, epoch, epochs, per_class, seed)
            matrices.append(cm)
            summary.confusion_counts(cm, names, step=epoch, split=split)
            if mistakes:
                records = [{"true": i % classes, "predicted": (i + 1) % classes,
                            "confidence": round(0.99 - 0.01 * i, 4), "position": 7 * i + epoch}
                           for i in range(mistakes)]
                summary.confident_mistakes(records, [thumbnail(epoch * 1000 + i) for i in range(mistakes)],
                                           step=epoch, split=split)
    writer.close()
    return matrices
