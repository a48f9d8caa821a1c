"""Which kind of classifier head the capture reads, and how its outputs and targets become classes.

- Single-label, C >= 2 units (softmax or logits): as always, predicted class = argmax.
- Binary, one unit (sigmoid, or a linear unit = logits): read as two classes, negative = class 0
  and positive = class 1, with scores [1 - p, p] where p is the positive class's probability
  (sigmoid applied to logits); predicted positive when p >= threshold.
- Multi-label, C independent sigmoids with multi-hot targets: not monitored yet. The capture
  refuses a C-unit sigmoid output when it attaches and counts multi-hot target rows while
  streaming, so the suite turns itself off with one warning instead of showing argmax numbers
  that mean nothing for multi-label data.
"""

from __future__ import annotations

import tensorflow as tf

MULTI_LABEL = (
    "multi-label models are not monitored yet: {why}; each image may carry several labels, so a "
    "single-label confusion matrix and per-class metrics (read by argmax) would be wrong numbers"
)


def output_activation(model, index: int | None = None) -> str | None:
    """The name of the output layer's activation ("sigmoid", "softmax", "linear"), else None:
    the last layer's, or with `index` the layer that makes the model's output `index`."""
    try:
        layer = model.layers[-1] if index is None else model.outputs[index]._keras_history[0]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return name if isinstance(name, str) else None


def binary_from_logits(loss_from_logits: bool | None, activation: str | None) -> bool | None:
    """Whether a one-unit output is a logit: the loss's (or the user's) `from_logits` where known,
    else a sigmoid output layer is a probability and a linear one a logit; None: decided per batch."""
    if loss_from_logits is not None:
        return loss_from_logits
    if activation == "sigmoid":
        return False
    if activation == "linear":
        return True
    return None


def binary_probabilities(y_pred, from_logits: bool | None):
    """(N, 1) outputs -> (N, 2) scores [1 - p, p] of the negative and the positive class.

    Unknown kind (None): a batch whose outputs all lie in [0, 1] is probabilities, else logits.
    """
    z = tf.reshape(tf.cast(y_pred, tf.float32), [-1])
    if from_logits is True:
        p = tf.sigmoid(z)
    elif from_logits is False:
        p = z
    else:
        in_range = tf.logical_and(tf.reduce_all(z >= 0.0), tf.reduce_all(z <= 1.0))
        p = tf.where(in_range, z, tf.sigmoid(z))
    return tf.stack([1.0 - p, p], axis=1)


def binary_labels(y):
    """0/1 targets of shape (N,) or (N, 1), ints or floats -> int32 (N,); anything else is -1."""
    y = tf.convert_to_tensor(y)
    if y.shape.rank not in (1, 2) or (y.shape.rank == 2 and y.shape[-1] != 1):
        raise ValueError(f"binary targets must be (batch,) or (batch, 1), got {y.shape}")
    y = tf.reshape(tf.cast(y, tf.float32), [-1])
    is_01 = tf.logical_or(tf.equal(y, 0.0), tf.equal(y, 1.0))
    return tf.where(is_01, tf.cast(y, tf.int32), -1)


def single_labels(y, num_classes: int):
    """Integer labels from (N,), (N, 1) or one-hot (N, C) targets, and the count of multi-hot rows.

    A (N, C) row of 0s and 1s that is not one-hot (several 1s, or none) is multi-hot: its label is
    -1 (not counted) and it adds to the count, which turns the suite off. Soft rows (label
    smoothing) are read by argmax as before.
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] == num_classes and num_classes > 1:
        yf = tf.cast(y, tf.float32)
        zero_one = tf.reduce_all(tf.logical_or(tf.equal(yf, 0.0), tf.equal(yf, 1.0)), axis=-1)
        multi_hot = tf.logical_and(zero_one, tf.not_equal(tf.reduce_sum(yf, axis=-1), 1.0))
        labels = tf.where(multi_hot, -1, tf.argmax(yf, axis=-1, output_type=tf.int32))
        return labels, tf.reduce_sum(tf.cast(multi_hot, tf.float32))
    return tf.cast(tf.reshape(y, [-1]), tf.int32), tf.constant(0.0)
