"""One training run, start to end: data → model → fit with the suite → save → test."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from callbacks.chief_tensorboard import ChiefTensorBoard
from callbacks.confusion_matrix import accuracy, write_confusion_summaries
from callbacks.per_class_metrics import write_per_class_summaries
from callbacks.suite import monitoring_callbacks, seconds_on_training_thread
from monitor import data as data_mod
from monitor import runs, summaries
from monitor.capture import EvaluationCapture
from monitor.config import RunConfig
from monitor.distribution import enable_keras_multiworker, make_strategy, strategy_is_chief
from monitor.metrics import per_class
from monitor.models import build, compile_model, recipe
from monitor.writers import SummaryWriters

MODEL_FILE = "model.keras"


def prepare_arrays(x: np.ndarray, y: np.ndarray, model: str, num_classes: int):
    """Model-ready float32 inputs and labels, scaled to [0, 1] exactly once.

    The `tutorial` model rescales inside itself, so it gets raw 0..255 pixels.
    """
    r = recipe(model)
    x = x.astype(np.float32)
    if not r.rescale_in_model:
        x /= 255.0
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


def seeded_model(c: RunConfig, input_shape, num_classes: int) -> keras.Model:
    """The compiled model of run `c`; the same seed gives the same initial weights."""
    keras.utils.set_random_seed(c.seed)
    model = build(c.model, input_shape, num_classes)
    compile_model(model, c.model, c.learning_rate)
    return model


def flags_markdown(config: RunConfig) -> str:
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in config.as_dict().items())
    return "| flag | value |\n|---|---|\n" + rows


def run(config: RunConfig, splits: data_mod.Splits | None = None, out=sys.stdout) -> dict:
    """Train, monitor, save and test one run; returns the metrics.json content.

    Raises MonitorError for bad input before anything is written to disk.
    """
    start = time.time()
    c = config.resolved()
    if splits is None:
        splits = data_mod.load_splits(c.dataset, c.data_dir, c.val_split, c.seed, c.limit)
    ds = splits.dataset
    x_tr, y_tr, x_val, y_val = splits.x_train, splits.y_train, splits.x_val, splits.y_val
    num_classes = len(ds.class_names)
    strategy = make_strategy(c.strategy)  # before any other TensorFlow work (multi-worker needs it)
    chief = strategy_is_chief(strategy)
    if chief:
        run_dir = runs.create_run_dir(runs.run_dir_path(c.logdir, c.dataset, c.model, c.run_name))
        print(f"Run directory: {run_dir}", file=out)
        print(f"Watch it:      tensorboard --logdir {c.logdir}", file=out, flush=True)
    else:  # only the chief writes the run; this worker's scratch goes and is removed
        run_dir = tempfile.mkdtemp(prefix="monitor-worker-")
        print("This worker is not the chief: the chief writes the run, this worker keeps nothing.",
              file=out, flush=True)
    try:
        return _train(c, strategy, chief, ds, (x_tr, y_tr, x_val, y_val), num_classes, run_dir, start,
                      out)
    except BaseException:
        # A run that never finished an epoch holds nothing worth keeping.
        if chief and not os.path.exists(os.path.join(run_dir, runs.METRICS_FILE)):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)


def _train(c: RunConfig, strategy, chief: bool, ds, arrays, num_classes: int, run_dir: str,
           start: float, out) -> dict:
    x_tr, y_tr, x_val, y_val = arrays
    with strategy.scope():
        model = seeded_model(c, ds.x_train.shape[1:], num_classes)
    enable_keras_multiworker(model)  # keras-team/keras#20585; nothing outside multi-worker runs
    train_ds = make_dataset(*prepare_arrays(x_tr, y_tr, c.model, num_classes), c.batch_size, True, c.seed)
    val_ds = make_dataset(*prepare_arrays(x_val, y_val, c.model, num_classes), c.batch_size, False, c.seed)

    writers = SummaryWriters(run_dir, writing=chief)
    writers.submit("monitor", lambda: summaries.text("run/flags", flags_markdown(c), 0))
    if c.suite:
        callbacks = monitoring_callbacks(
            ds.class_names, run_dir, histogram_freq=1 if c.histograms else 0,
            confusion_matrix=c.confusion_matrix, per_class=c.per_class,
            prediction_grid=c.prediction_grid, pr_curves=c.pr_curves,
            every_n_epochs=c.every_n_epochs, grid_size=c.grid_size, grid_columns=c.grid_columns,
            probability_images=c.probability_images, confused_pairs=c.confused_pairs,
            epochs_per_tag=c.epochs_per_tag, writers=writers,
        )
    else:
        callbacks = [ChiefTensorBoard(run_dir, histogram_freq=1 if c.histograms else 0)]
    history = keras.callbacks.History()
    callbacks = [*callbacks, history]
    early_stop = None
    if c.early_stopping:
        early_stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=c.early_stopping, restore_best_weights=True)
        callbacks.append(early_stop)

    record = {
        "status": "running",
        "flags": c.as_dict(),
        "run_dir": run_dir,
        "parameters": model.count_params(),
        "replicas": strategy.num_replicas_in_sync,
        "train_size": len(x_tr), "validation_size": len(x_val), "test_size": len(ds.x_test),
        "provenance": {
            "data_source": ds.source,
            "data_sha256": data_mod.file_sha256(ds.source),
            "packages": runs.package_versions(),
            "git": runs.git_commit(),
        },
    }
    metrics_path = os.path.join(run_dir, runs.METRICS_FILE)
    fit_start = time.time()
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=c.epochs, callbacks=callbacks, shuffle=False,
                  verbose=2 if os.environ.get("CI") else "auto")
    except KeyboardInterrupt:
        writers.close()
        record.update(status="interrupted", history=history.history,
                      epochs_run=len(history.history.get("loss", [])),
                      wall_time_s=time.time() - start)
        if record["epochs_run"]:
            runs.write_json(metrics_path, record)
        raise
    fit_seconds = time.time() - fit_start
    epochs_run = len(history.history["loss"])
    # restore_best_weights puts the best epoch's weights back when fit ends, stopped early or not:
    # the saved and tested model is that epoch's.
    weights_epoch = epochs_run
    if early_stop is not None and early_stop.best_weights is not None:
        weights_epoch = early_stop.best_epoch + 1
    suite_seconds = seconds_on_training_thread(callbacks) if c.suite else None
    if not chief:
        writers.close()
        print(f"Worker done: {epochs_run} epochs in {fit_seconds:.0f} s; the chief saves and tests.",
              file=out, flush=True)
        return record | {"status": "completed", "epochs_run": epochs_run}

    model_path = os.path.join(run_dir, MODEL_FILE)
    model.save(model_path)
    reloaded = keras.saving.load_model(model_path, safe_mode=True)
    test_logs, test_cm = evaluate_with_confusion(
        reloaded, *prepare_arrays(ds.x_test, ds.y_test, c.model, num_classes), c.batch_size, num_classes
    )
    step = epochs_run - 1
    restored = weights_epoch != epochs_run
    title = (f"Test confusion matrix after {epochs_run} epochs"
             + (f" (weights of epoch {weights_epoch})" if restored else "")
             + f", accuracy {accuracy(test_cm):.3f}")

    def write_test() -> None:
        write_confusion_summaries(test_cm, ds.class_names, title, step, top_pairs=c.confused_pairs)
        write_per_class_summaries(test_cm, ds.class_names, step)
        summaries.scalars({"test/loss": test_logs["loss"], "test/accuracy": test_logs["accuracy"]}, step)

    writers.submit("test", write_test)
    writers.close()
    runs.write_confusion_csv(os.path.join(run_dir, runs.TEST_CONFUSION_FILE), test_cm, ds.class_names)

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    at = {k: v[weights_epoch - 1] for k, v in hist.items()}
    pc = per_class(test_cm)
    record.update(
        status="completed",
        epochs_run=epochs_run,
        weights_epoch=weights_epoch,
        wall_time_s=round(time.time() - start, 2),
        fit_time_s=round(fit_seconds, 2),
        suite_seconds_on_training_thread=suite_seconds,
        suite_seconds_in_background=round(writers.busy_seconds, 3),
        history=hist,
        final={
            "train": {"loss": at["loss"], "accuracy": at["accuracy"]},
            "validation": {"loss": at.get("val_loss"), "accuracy": at.get("val_accuracy")},
            "test": {"loss": float(test_logs["loss"]), "accuracy": float(test_logs["accuracy"])},
        },
        test_per_class={name: {m: float(pc[m][i]) for m in ("precision", "recall", "f1")}
                        | {"support": int(pc["support"][i])}
                        for i, name in enumerate(ds.class_names)},
    )
    if c.early_stopping and epochs_run < c.epochs:
        record["early_stopped"] = True
    runs.write_json(metrics_path, record)
    print(f"Test accuracy {test_logs['accuracy']:.4f}, loss {test_logs['loss']:.4f} "
          f"({epochs_run} epochs, {record['wall_time_s']:.0f} s"
          + (f"; weights of epoch {weights_epoch}, restored by early stopping)" if restored else ")"),
          file=out)
    print(f"Run directory: {run_dir}", file=out)
    print(f"Open it:       tensorboard --logdir {c.logdir}", file=out, flush=True)
    return record


def evaluate_with_confusion(model, x, y, batch_size: int, num_classes: int):
    """`model.evaluate` on (x, y) and the confusion matrix streamed from the same pass."""
    capture = EvaluationCapture(num_classes, sample_slots=0)
    capture.attach(model)
    try:
        logs = model.evaluate(make_dataset(x, y, batch_size, False, 0), verbose=0, return_dict=True)
    finally:
        capture.detach()
    return logs, capture.read().confusion
