"""Streaming state collected during Keras' own evaluation pass.

`EvaluationCapture.attach(model)` wraps the model's `test_step` and
`compute_metrics` on the instance (not in `compile()`), so every evaluation
batch also updates a few variables: confusion-matrix counts, per-class score
histograms for PR curves, and the first few images of every class with their
predicted probabilities. Nothing is predicted twice and nothing of ours enters
the compiled model, its logs or its saved file; `detach()` restores the model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class EvaluationState:
    """A numpy snapshot of one evaluation pass."""

    confusion: np.ndarray  # (C, C) int64, rows = true class
    pos_hist: np.ndarray  # (C, T) positives whose score fell in bucket t
    neg_hist: np.ndarray  # (C, T) negatives whose score fell in bucket t
    sample_images: np.ndarray | None  # (S, H, W, Ch) float32, first k of each class
    sample_labels: np.ndarray  # (S,) true class of each slot
    sample_probs: np.ndarray  # (S, C) probabilities
    sample_positions: np.ndarray  # (S,) position in evaluation order, -1 = empty slot
    samples_per_class: int

    @property
    def count(self) -> int:
        return int(self.confusion.sum())


class EvaluationCapture:
    """Streams confusion counts, PR histograms and sample images out of `evaluate`.

    Usage:
    ```python
    capture = EvaluationCapture(num_classes=10)
    capture.attach(model)
    model.evaluate(x_val, y_val)
    state = capture.read()   # EvaluationState
    capture.detach()
    ```
    """

    def __init__(
        self,
        num_classes: int,
        num_thresholds: int = 101,
        samples_per_class: int = 2,
        from_logits: bool | None = None,
    ):
        if num_classes < 2:
            raise ValueError(f"Invalid value for argument `num_classes`. Received: {num_classes}")
        self.num_classes = num_classes
        self.num_thresholds = num_thresholds
        self.samples_per_class = samples_per_class
        self.from_logits = from_logits
        self._model = None
        self._active = False  # True while Keras traces/runs test_step
        self._vars: dict[str, tf.Variable] = {}
        self._images: tf.Variable | None = None
        self._warned: set[str] = set()

    # -- attaching -------------------------------------------------------
    def attach(self, model) -> None:
        if self._model is model:
            return
        if self._model is not None:
            self.detach()
        units = _output_units(model)
        if units == 1:
            raise ValueError(
                "The model has 1 output unit (a sigmoid binary classifier?); the monitor needs one "
                f"output per class, softmax or logits: Dense({self.num_classes}) for these class names."
            )
        if units is not None and units != self.num_classes:
            raise ValueError(
                f"The model outputs {units} classes but the monitor has {self.num_classes} class "
                "names. Pass one class name per output unit, in output order."
            )
        self._model = model
        if self.from_logits is None:
            self._resolved_logits = _loss_from_logits(model)
        else:
            self._resolved_logits = self.from_logits
        original_test_step = model.test_step
        original_compute_metrics = model.compute_metrics

        def test_step(data):
            self._active = True
            try:
                return original_test_step(data)
            finally:
                self._active = False

        def compute_metrics(x, y, y_pred, sample_weight=None):
            if self._active:
                self._update(x, y, y_pred)
            return original_compute_metrics(x, y, y_pred, sample_weight=sample_weight)

        with _strategy(model).scope():
            self._create_count_variables()
        model.test_step = test_step
        model.compute_metrics = compute_metrics
        model.test_function = None  # retrace with the wrapped step

    def detach(self) -> None:
        model, self._model = self._model, None
        if model is None:
            return
        for name in ("test_step", "compute_metrics"):
            model.__dict__.pop(name, None)
        model.test_function = None

    # -- state -----------------------------------------------------------
    def reset(self) -> None:
        for var in list(self._vars.values()) + ([self._images] if self._images is not None else []):
            var.assign(tf.zeros_like(var))
        if "positions" in self._vars:
            self._vars["positions"].assign(-tf.ones_like(self._vars["positions"]))

    def read(self) -> EvaluationState:
        v = {k: var.numpy() for k, var in self._vars.items()}
        s = self.num_classes * self.samples_per_class
        if self._images is not None:
            images = self._images.numpy()[:s]
            probs = v["probs"][:s]
            positions = v["positions"][:s]
        else:
            images, probs, positions = None, np.zeros((s, self.num_classes)), -np.ones(s, np.int64)
        return EvaluationState(
            confusion=np.rint(v["confusion"]).astype(np.int64),
            pos_hist=np.rint(v["pos_hist"]).astype(np.int64),
            neg_hist=np.rint(v["neg_hist"]).astype(np.int64),
            sample_images=images,
            sample_labels=np.repeat(np.arange(self.num_classes), self.samples_per_class),
            sample_probs=probs,
            sample_positions=positions,
            samples_per_class=self.samples_per_class,
        )

    # -- graph side ------------------------------------------------------
    def _variable(self, name, value, dtype):
        return tf.Variable(
            tf.cast(value, dtype),
            trainable=False,
            name=f"monitor_{name}",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.SUM,
        )

    def _create_count_variables(self) -> None:
        if self._vars:
            return
        c, t = self.num_classes, self.num_thresholds
        s = c * self.samples_per_class + 1  # the extra slot takes samples we don't keep
        self._vars = {
            "confusion": self._variable("confusion", tf.zeros((c, c)), tf.float32),
            "pos_hist": self._variable("pos_hist", tf.zeros((c, t)), tf.float32),
            "neg_hist": self._variable("neg_hist", tf.zeros((c, t)), tf.float32),
            "class_seen": self._variable("class_seen", tf.zeros((c,)), tf.int64),
            "seen": self._variable("seen", 0, tf.int64),
            "probs": self._variable("probs", tf.zeros((s, c)), tf.float32),
            "positions": self._variable("positions", -tf.ones((s,)), tf.int64),
        }

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _update(self, x, y, y_pred) -> None:
        c = self.num_classes
        if not tf.is_tensor(y_pred) or y_pred.shape.rank != 2 or y_pred.shape[-1] != c:
            self._warn_once("output", f"monitor: model output {getattr(y_pred, 'shape', type(y_pred))} "
                            f"is not (batch, {c}); nothing captured")
            return
        probs = _to_probabilities(tf.cast(y_pred, tf.float32), self._resolved_logits)
        labels = _to_labels(y, c)
        predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
        true_1h = tf.one_hot(labels, c, dtype=tf.float32)
        v = self._vars
        v["confusion"].assign_add(
            tf.matmul(true_1h, tf.one_hot(predicted, c, dtype=tf.float32), transpose_a=True)
        )
        t = self.num_thresholds
        buckets = tf.clip_by_value(
            tf.cast(tf.floor(probs * (t - 1)), tf.int32), 0, t - 1
        )
        bucket_1h = tf.one_hot(buckets, t, dtype=tf.float32)  # (N, C, T)
        v["pos_hist"].assign_add(tf.einsum("nc,nct->ct", true_1h, bucket_1h))
        v["neg_hist"].assign_add(tf.einsum("nc,nct->ct", 1.0 - true_1h, bucket_1h))
        self._update_samples(x, labels, probs)

    def _update_samples(self, x, labels, probs) -> None:
        if not tf.is_tensor(x) or x.shape.rank != 4 or None in x.shape[1:]:
            self._warn_once("input", "monitor: model input is not a single (batch, H, W, C) "
                            "tensor; sample images are not captured")
            return
        k = self.samples_per_class
        s = self.num_classes * k
        if self._images is None:
            with tf.init_scope(), _strategy(self._model).scope():
                self._images = tf.Variable(
                    tf.zeros((s + 1, *x.shape[1:]), tf.float32),
                    trainable=False,
                    name="monitor_images",
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                )
        v = self._vars
        labels64 = tf.cast(labels, tf.int64)
        onehot = tf.one_hot(labels, self.num_classes, dtype=tf.int64)
        rank_in_batch = tf.reduce_sum(tf.cumsum(onehot, axis=0, exclusive=True) * onehot, axis=1)
        rank = tf.gather(v["class_seen"], labels) + rank_in_batch
        slot = tf.where(rank < k, labels64 * k + rank, tf.cast(s, tf.int64))[:, None]
        n = tf.shape(labels64, out_type=tf.int64)[0]
        self._images.assign(tf.tensor_scatter_nd_update(self._images, slot, tf.cast(x, tf.float32)))
        v["probs"].assign(tf.tensor_scatter_nd_update(v["probs"], slot, probs))
        v["positions"].assign(
            tf.tensor_scatter_nd_update(v["positions"], slot, v["seen"] + tf.range(n, dtype=tf.int64))
        )
        v["class_seen"].assign_add(tf.reduce_sum(onehot, axis=0))
        v["seen"].assign_add(n)


def _strategy(model):
    return getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()


def _output_units(model) -> int | None:
    """The last output dimension of a built single-output model, else None (unknown yet)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    units = outputs[0].shape[-1]
    return int(units) if units is not None else None


def _loss_from_logits(model) -> bool | None:
    """`from_logits` of the compiled loss where Keras tells it, else None (detect per batch)."""
    loss = getattr(model, "loss", None)
    value = getattr(loss, "from_logits", None)
    if value is None and loss is not None and hasattr(loss, "get_config"):
        value = loss.get_config().get("from_logits")
    return value if isinstance(value, bool) else None


def _to_probabilities(y_pred, from_logits: bool | None):
    if from_logits is True:
        return tf.nn.softmax(y_pred, axis=-1)
    if from_logits is False:
        return y_pred
    # Unknown: rows that already are distributions stay, anything else is logits.
    is_dist = tf.logical_and(
        tf.reduce_all(y_pred >= 0.0, axis=-1),
        tf.abs(tf.reduce_sum(y_pred, axis=-1) - 1.0) < 1e-3,
    )
    return tf.where(is_dist[:, None], y_pred, tf.nn.softmax(y_pred, axis=-1))


def _to_labels(y, num_classes: int):
    """Integer labels from (N,), (N, 1) or one-hot (N, C) targets."""
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] == num_classes and num_classes > 1:
        return tf.argmax(y, axis=-1, output_type=tf.int32)
    return tf.cast(tf.reshape(y, [-1]), tf.int32)
