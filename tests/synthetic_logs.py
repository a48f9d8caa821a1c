"""Synthetic dashboard logs: confusion counts and mistakes for many epochs, as the suite writes them
(and, on request, each epoch's calibration statistics and alerts, written before its counts as the
suite's are, and heat maps of its mistakes, written after them).

Used by the dashboard tests (150 epochs, 1,000 classes) and `bench/dashboard.py`.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from monitor import explanation_summaries
from monitor.calibration import bin_statistics
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


def synthetic_calibration(images: int, epoch: int, epochs: int, seed: int) -> dict:
    """Top-label reliability statistics (`monitor.calibration.bin_statistics`) of `images` made-up
    predictions: confidences that grow with the epoch, right less often than they claim early on
    (over-confident) and more often later (under-confident)."""
    rng = np.random.default_rng(seed * 100_019 + epoch)
    progress = epoch / max(epochs - 1, 1)
    confidence = np.clip(rng.beta(2 + 6 * progress, 2, images), 1 / 3, 1.0)
    accuracy = np.clip(confidence + (0.15 * progress - 0.1) * (1 - confidence) * 3, 0, 1)
    return bin_statistics(confidence, rng.random(images) < accuracy)


def alert(epoch: int, rule: str, event: str = "started", message: str | None = None) -> dict:
    """One alert as the suite writes it (epoch 1-based)."""
    message = message or f"{rule} {event} at epoch {epoch}"
    return {"epoch": epoch, "rule": rule, "event": event, "message": message, "numbers": {"value": 0.5}}


def write_extras(epoch: int, calibration: dict | None, alerts: list[dict] | None, split: str,
                 epochs_per_tag: int) -> None:
    """An epoch's calibration statistics and alerts, into the default writer (before its counts)."""
    if calibration is not None:
        summary.calibration_bins(**calibration, step=epoch, split=split, epochs_per_tag=epochs_per_tag)
    if alerts:
        summary.alerts(alerts, epoch, epochs_per_tag=epochs_per_tag)


def heat_map_png(hot_corner: str, size: int = 4) -> bytes:
    """A grey size x size heat map, 255 in its `hot_corner` ("top_left" or "bottom_right") and 0 in
    the opposite one (linear in between)."""
    ramp = np.add.outer(np.arange(size), np.arange(size)) / (2 * (size - 1))
    values = np.round(255 * (1 - ramp if hot_corner == "top_left" else ramp)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(values, mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def thumbnail(seed: int, size: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


class LiveRun:
    """A run written epoch by epoch, as training writes it: the writer stays open and each
    epoch is flushed to disk at once (for the tests of a dashboard following a live run)."""

    def __init__(self, run_dir: Path, classes: int, epochs: int, per_class: int = 10, seed: int = 0,
                 mistakes: int = 4, split: str = "validation", epochs_per_tag: int = 10,
                 calibration: bool = False, alerts: dict[int, list[dict]] | None = None,
                 explained: int = 0):
        self.names = [f"class_{i:04d}" for i in range(classes)]
        self.classes, self.epochs, self.per_class, self.seed = classes, epochs, per_class, seed
        self.mistakes, self.split, self.epochs_per_tag = mistakes, split, epochs_per_tag
        self.with_calibration, self.alerts = calibration, dict(alerts or {})  # alerts: step -> list
        self.explained = min(explained, mistakes)  # heat maps for the first `explained` mistakes
        self.writer = tf.summary.create_file_writer(str(run_dir))
        self.matrices: list[np.ndarray] = []
        self.calibration: dict[int, dict] = {}  # step -> the statistics written

    def write(self, epoch: int | None = None) -> np.ndarray:
        """Write (and flush) epoch `epoch` (the next one by default); returns its matrix."""
        epoch = len(self.matrices) if epoch is None else epoch
        cm = synthetic_matrix(self.classes, epoch, self.epochs, self.per_class, self.seed)
        if self.with_calibration:
            self.calibration[epoch] = synthetic_calibration(int(cm.sum()), epoch, self.epochs, self.seed)
        with self.writer.as_default():
            write_extras(epoch, self.calibration.get(epoch), self.alerts.get(epoch), self.split,
                         self.epochs_per_tag)
            summary.confusion_counts(cm, self.names, step=epoch, split=self.split,
                                     epochs_per_tag=self.epochs_per_tag)
            if self.mistakes:
                records = [{"true": i % self.classes, "predicted": (i + 1) % self.classes,
                            "confidence": round(0.99 - 0.01 * i, 4), "position": 7 * i + epoch}
                           for i in range(self.mistakes)]
                thumbs = [thumbnail(epoch * 1000 + i) for i in range(self.mistakes)]
                summary.confident_mistakes(records, thumbs, step=epoch, split=self.split,
                                           epochs_per_tag=self.epochs_per_tag)
                if self.explained:  # the predicted class's map hot at the top left, the true class's opposite
                    pngs = [heat_map_png(corner) for _ in range(self.explained)
                            for corner in ("top_left", "bottom_right")]
                    explanation_summaries.mistake_maps(records[:self.explained], pngs, (4, 4), "conv_last",
                                                       "logit", step=epoch, split=self.split,
                                                       epochs_per_tag=self.epochs_per_tag)
        self.writer.flush()
        self.matrices.append(cm)
        return cm

    def close(self) -> None:
        self.writer.close()


def write_run(run_dir: Path, classes: int, epochs: int, per_class: int = 10, seed: int = 0,
              mistakes: int = 4, split: str = "validation", **extras) -> list[np.ndarray]:
    """Write `epochs` epochs into `run_dir` (a TensorBoard run); returns the matrices written.
    `extras`: LiveRun's `calibration`, `alerts`, `explained`."""
    run = LiveRun(run_dir, classes, epochs, per_class, seed, mistakes, split, **extras)
    for epoch in range(epochs):
        run.write(epoch)
    run.close()
    return run.matrices


def binary_scores(epoch: int, epochs: int, images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,) in {0, 1}, scores p(positive) (N,) float32) that separate better with the epoch."""
    rng = np.random.default_rng(seed * 100_003 + epoch)
    labels = (rng.random(images) < 0.4).astype(np.int64)
    spread = 0.5 + 2.5 * epoch / max(epochs - 1, 1)
    logits = rng.normal(0.0, 1.0, images) + spread * (2 * labels - 1)
    return labels, (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def score_hists(labels: np.ndarray, scores: np.ndarray, num_thresholds: int = 101) -> np.ndarray:
    """(2, T): the histograms of `scores` over the negatives and over the positives, bucket
    floor(p * (T - 1)) clipped to [0, T - 1] (as the capture's, in float32)."""
    scaled = scores.astype(np.float32) * np.float32(num_thresholds - 1)
    buckets = np.clip(np.floor(scaled), 0, num_thresholds - 1)
    return np.stack([np.bincount(buckets[labels == c].astype(np.int64), minlength=num_thresholds)
                     for c in (0, 1)])


class BinaryLiveRun:
    """A binary head's run written epoch by epoch as the suite writes it: each epoch's score
    histograms, then its exact confusion counts at `threshold`."""

    def __init__(self, run_dir: Path, epochs: int, images: int = 300, threshold: float = 0.5, seed: int = 0,
                 names=("neg", "pos"), epochs_per_tag: int = 10):
        self.names, self.epochs, self.images, self.threshold = list(names), epochs, images, threshold
        self.seed, self.epochs_per_tag = seed, epochs_per_tag
        self.writer = tf.summary.create_file_writer(str(run_dir))
        self.matrices: list[np.ndarray] = []
        self.hists: list[np.ndarray] = []
        self.scores: list[tuple[np.ndarray, np.ndarray]] = []

    def write(self) -> np.ndarray:
        epoch = len(self.matrices)
        labels, scores = binary_scores(epoch, self.epochs, self.images, self.seed)
        cm = np.zeros((2, 2), np.int64)
        np.add.at(cm, (labels, (scores >= self.threshold).astype(np.int64)), 1)
        hists = score_hists(labels, scores)
        with self.writer.as_default():
            summary.score_histograms(hists[0], hists[1], self.threshold, step=epoch,
                                     epochs_per_tag=self.epochs_per_tag)
            summary.confusion_counts(cm, self.names, step=epoch, epochs_per_tag=self.epochs_per_tag)
        self.writer.flush()
        self.matrices.append(cm)
        self.hists.append(hists)
        self.scores.append((labels, scores))
        return cm

    def close(self) -> None:
        self.writer.close()


ODD_NAMES = ["cat", "<b>dog</b>", "bird & co", "<img src=x onerror=\"window.injected=1\">", "fish"]


def multilabel_counts(y_true: np.ndarray, y_pred: np.ndarray, threshold: float,
                      cooccurrence: bool = True) -> dict:
    """The dashboard's multi-label counts of 0/1 arrays (N, C), computed plainly (the reference)."""
    t, p = y_true.astype(bool), y_pred.astype(bool)
    missed, added = t & ~p, ~t & p
    body = {"count": len(t), "exact": int((t == p).all(axis=1).sum()),
            "tp": (t & p).sum(0).tolist(), "fp": added.sum(0).tolist(), "fn": missed.sum(0).tolist(),
            "tn": (~t & ~p).sum(0).tolist(), "cooccurrence": None, "threshold": threshold}
    if cooccurrence:
        matrix = missed.T.astype(np.int64) @ added.astype(np.int64)  # [i, j]: images missing i, given j
        body["cooccurrence"] = [[int(i), int(j), int(matrix[i, j])] for i, j in np.argwhere(matrix)]
    return body


class MultiLabelLiveRun:
    """A multi-label run written epoch by epoch: labels present with probability 0.3, each label
    decision wrong with a probability falling from 0.3 to 0.05 over the epochs."""

    def __init__(self, run_dir: Path, epochs: int, images: int = 200, names=tuple(ODD_NAMES), seed: int = 0,
                 threshold: float = 0.5, epochs_per_tag: int = 10, cooccurrence: bool = True,
                 alerts: dict[int, list[dict]] | None = None):
        self.names, self.epochs, self.images, self.seed = list(names), epochs, images, seed
        self.threshold, self.epochs_per_tag, self.cooccurrence = threshold, epochs_per_tag, cooccurrence
        self.alerts = dict(alerts or {})  # step -> the alerts written at it
        self.writer = tf.summary.create_file_writer(str(run_dir))
        self.counts: list[dict] = []
        self.arrays: list[tuple[np.ndarray, np.ndarray]] = []

    def write(self) -> dict:
        epoch = len(self.counts)
        rng = np.random.default_rng(self.seed * 100_003 + epoch)
        shape = (self.images, len(self.names))
        y_true = rng.random(shape) < 0.3
        wrong = rng.random(shape) < 0.3 - 0.25 * epoch / max(self.epochs - 1, 1)
        y_pred = y_true ^ wrong
        counts = multilabel_counts(y_true, y_pred, self.threshold, self.cooccurrence)
        with self.writer.as_default():
            write_extras(epoch, None, self.alerts.get(epoch), "validation", self.epochs_per_tag)
            summary.multilabel_counts(counts, self.names, step=epoch, epochs_per_tag=self.epochs_per_tag)
        self.writer.flush()
        self.counts.append(counts)
        self.arrays.append((y_true, y_pred))
        return counts

    def close(self) -> None:
        self.writer.close()
