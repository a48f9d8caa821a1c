"""What a run feeds Keras: model-ready arrays, tf.data pipelines, the seeded model, the test pass."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from monitor.capture import EvaluationCapture
from monitor.models import build, compile_model, recipe
from monitor.recipes import model_input
from monitor.settings import RunConfig

ITERATORS_PER_EPOCH = 2  # iterators Keras 3's fit makes of a dataset of known length, per epoch


def prepare_arrays(x: np.ndarray, y: np.ndarray, model: str, num_classes: int, binary: bool = False):
    """Model-ready float32 inputs and labels, scaled to [0, 1] exactly once.

    The `tutorial` model rescales inside itself, so it gets raw 0..255 pixels. A binary
    model's labels are 0/1 floats of shape (N, 1).
    """
    r = recipe(model)
    x = model_input(x.astype(np.float32), r.rescale_in_model)
    if binary:
        return x, y.astype(np.float32).reshape(-1, 1)
    y = keras.utils.to_categorical(y, num_classes).astype(np.float32) if r.one_hot_labels else y
    return x, y


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int):
    """Batches gathered by index: a full reshuffle every epoch without copying the images."""
    xt, yt = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(xt, i), tf.gather(yt, i)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    # In-memory data under multi-worker training: every worker builds the same (seeded)
    # pipeline and keeps its share of the elements, as TensorFlow's guide prescribes.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def datasets(c: RunConfig, splits, num_classes: int, epochs_done: int):
    """(train, validation) pipelines; the training one already past the reshuffles of the
    `epochs_done` epochs a resumed run skips."""
    train_ds = make_dataset(*prepare_arrays(splits.x_train, splits.y_train, c.model, num_classes, c.binary),
                            c.batch_size, True, c.seed)
    val_ds = make_dataset(*prepare_arrays(splits.x_val, splits.y_val, c.model, num_classes, c.binary),
                          c.batch_size, False, c.seed)
    # Each iterator made of `train_ds` draws the next seeded reshuffle, and Keras 3's `fit` makes
    # two per epoch (at its start and at its end). A resumed run makes those of the epochs it
    # skips, so epoch k sees the order it would have seen uninterrupted (tested: the resumed
    # history equals the uninterrupted one).
    for _ in range(ITERATORS_PER_EPOCH * epochs_done):
        iter(train_ds)
    return train_ds, val_ds


def seeded_model(c: RunConfig, input_shape, num_classes: int) -> keras.Model:
    """The compiled model of run `c`; the same seed gives the same initial weights."""
    keras.utils.set_random_seed(c.seed)
    model = build(c.model, input_shape, num_classes, binary=c.binary)
    compile_model(model, c.model, c.learning_rate, binary=c.binary)
    return model


def evaluate_with_confusion(model, x, y, batch_size: int, num_classes: int):
    """`model.evaluate` on (x, y), and the confusion matrix and calibration statistics (None for a
    multi-label head) streamed from the same pass."""
    capture = EvaluationCapture(num_classes, sample_slots=0)
    capture.attach(model)
    try:
        logs = model.evaluate(make_dataset(x, y, batch_size, False, 0), verbose=0, return_dict=True)
    finally:
        capture.detach()
    state = capture.read()
    return logs, state.confusion, state.calibration
