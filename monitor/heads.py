"""Which kind of classifier head the capture reads, and how its outputs and targets become classes.

- Single-label, C >= 2 units (softmax or logits): as always, predicted class = argmax.
- Binary, one unit (sigmoid, or a linear unit = logits): read as two classes, negative = class 0
  and positive = class 1, with scores [1 - p, p] where p is the positive class's probability
  (sigmoid applied to logits); predicted positive when p >= threshold.
- Multi-label, C independent sigmoid units (or logits under a binary cross-entropy loss) with
  multi-hot (N, C) targets of 0s and 1s: every label is its own yes/no decision, p >= threshold.
  Read so from the model (`head_kind`), or chosen by the user (`SuiteOptions.head`).
- A single-label (softmax) head fed multi-hot target rows is not monitored: the capture counts
  such rows while streaming and the suite turns itself off with one warning instead of showing
  argmax numbers that mean nothing for multi-label data.
"""

from __future__ import annotations

import tensorflow as tf

MULTI_LABEL = (
    "multi-label targets with a single-label head are not monitored: {why}; each image may carry "
    "several labels, so a single-label confusion matrix and per-class metrics (read by argmax) would "
    "be wrong numbers. For a multi-label model use C sigmoid units (or logits with a binary "
    "cross-entropy loss), or pass head=\"multi_label\""
)
BINARY_LOSSES = ("binarycrossentropy", "binaryfocalcrossentropy")  # names, lower case, no "_"


def is_binary_loss(loss) -> bool:
    """Whether a compiled loss (a name, a function or a Loss object) is binary cross-entropy or its
    focal variant: on C > 1 units, independent yes/no labels."""
    if loss is None:
        return False
    name = loss if isinstance(loss, str) else (
        getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__)
    return str(name).lower().replace("_", "") in BINARY_LOSSES


def head_kind(head: str, units: int | None, activation: str | None, binary_loss: bool) -> str:
    """"binary", "single_label" or "multi_label": the user's `head`, or for "auto" one unit =
    binary, C sigmoid units (or a binary cross-entropy loss on units that are not softmax) =
    multi_label, else single_label. Units unknown yet: a one-unit batch is read as binary."""
    if head != "auto":
        return head
    if units == 1:
        return "binary"
    if activation == "sigmoid" or (activation != "softmax" and binary_loss):
        return "multi_label"
    return "single_label"


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
    p = sigmoid_probabilities(tf.reshape(y_pred, [-1]), from_logits)
    return tf.stack([1.0 - p, p], axis=1)


def sigmoid_probabilities(y_pred, from_logits: bool | None):
    """Independent sigmoid outputs (any shape) as float32 probabilities: sigmoid applied to logits.

    Unknown kind (None): a batch whose outputs all lie in [0, 1] is probabilities, else logits.
    """
    z = tf.cast(y_pred, tf.float32)
    if from_logits is True:
        return tf.sigmoid(z)
    if from_logits is False:
        return z
    in_range = tf.logical_and(tf.reduce_all(z >= 0.0), tf.reduce_all(z <= 1.0))
    return tf.where(in_range, z, tf.sigmoid(z))


def multi_hot_targets(y, num_classes: int):
    """Multi-hot (N, C) targets -> (float32 (N, C) of 0s and 1s, bool (N,) row is readable).

    Another shape raises ValueError; a row holding anything but 0s and 1s is unreadable (zeros
    here, and counted by the capture, which turns the suite off with one warning).
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank != 2 or y.shape[-1] != num_classes:
        raise ValueError(f"multi-label targets must be multi-hot (batch, {num_classes}) rows of 0s and "
                         f"1s, got {y.shape}")
    yf = tf.cast(y, tf.float32)
    readable = tf.reduce_all(tf.logical_or(tf.equal(yf, 0.0), tf.equal(yf, 1.0)), axis=-1)
    return tf.where(readable[:, None], yf, 0.0), readable


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
