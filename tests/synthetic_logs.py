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


class LiveRun:
    """A run written epoch by epoch, as training writes it: the writer stays open and each
    epoch is flushed to disk at once (for the tests of a dashboard following a live run)."""

    def __init__(self, run_dir: Path, classes: int, epochs: int, per_class: int = 10, seed: int = 0,
                 mistakes: int = 4, split: str = "validation", epochs_per_tag: int = 10):
        self.names = [f"class_{i:04d}" for i in range(classes)]
        self.classes, self.epochs, self.per_class, self.seed = classes, epochs, per_class, seed
        self.mistakes, self.split, self.epochs_per_tag = mistakes, split, epochs_per_tag
        self.writer = tf.summary.create_file_writer(str(run_dir))
        self.matrices: list[np.ndarray] = []

    def write(self, epoch: int | None = None) -> np.ndarray:
        """Write (and flush) epoch `epoch` (the next one by default); returns its matrix."""
        epoch = len(self.matrices) if epoch is None else epoch
        cm = synthetic_matrix(self.classes, epoch, self.epochs, self.per_class, self.seed)
        with self.writer.as_default():
            summary.confusion_counts(cm, self.names, step=epoch, split=self.split,
                                     epochs_per_tag=self.epochs_per_tag)
            if self.mistakes:
                records = [{"true": i % self.classes, "predicted": (i + 1) % self.classes,
                            "confidence": round(0.99 - 0.01 * i, 4), "position": 7 * i + epoch}
                           for i in range(self.mistakes)]
                thumbs = [thumbnail(epoch * 1000 + i) for i in range(self.mistakes)]
                summary.confident_mistakes(records, thumbs, step=epoch, split=self.split,
                                           epochs_per_tag=self.epochs_per_tag)
        self.writer.flush()
        self.matrices.append(cm)
        return cm

    def close(self) -> None:
        self.writer.close()


def write_run(run_dir: Path, classes: int, epochs: int, per_class: int = 10, seed: int = 0,
              mistakes: int = 4, split: str = "validation") -> list[np.ndarray]:
    """Write `epochs` epochs into `run_dir` (a TensorBoard run); returns the matrices written."""
    run = LiveRun(run_dir, classes, epochs, per_class, seed, mistakes, split)
    for epoch in range(epochs):
        run.write(epoch)
    run.close()
    return run.matrices
