"""One training run, start to end: data → model → fit with the suite → save → test."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from callbacks.chief_tensorboard import ChiefTensorBoard
from callbacks.confusion_matrix import accuracy, write_confusion_summaries
from callbacks.epoch_backup import EpochBackupCallback, merge_history
from callbacks.non_finite_loss import StopOnNonFiniteLoss
from callbacks.per_class_metrics import write_per_class_summaries
from callbacks.suite import monitoring_callbacks, seconds_on_training_thread
from monitor import data as data_mod
from monitor import runs, summaries
from monitor.capture import EvaluationCapture
from monitor.config import RunConfig
from monitor.distribution import enable_keras_multiworker, make_strategy, strategy_is_chief
from monitor.errors import MonitorError
from monitor.hparams import write_hparams_file
from monitor.metrics import per_class
from monitor.models import build, compile_model, recipe
from monitor.report import build_report
from monitor.resume import latest_backup, remove_backups, truncate_run
from monitor.runs import MODEL_FILE
from monitor.writers import SummaryWriters

ITERATORS_PER_EPOCH = 2  # iterators Keras 3's fit makes of a dataset of known length, per epoch


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


def run(config: RunConfig, splits: data_mod.Splits | None = None, out=sys.stdout,
        resume_dir: str | None = None) -> dict:
    """Train, monitor, save and test one run; returns the metrics.json content.

    `resume_dir`: continue that (killed) run from its last committed backup; `config`
    must be its recorded flags. Raises MonitorError for bad input before anything is
    written, NonFiniteLoss when the loss stops being finite, and KeyboardInterrupt
    (Terminated for SIGTERM) after recording an interrupted run.
    """
    start = time.time()
    c = config.resolved()
    if splits is None:
        splits = data_mod.load_splits(c.dataset, c.data_dir, c.val_split, c.seed, c.limit)
    strategy = make_strategy(c.strategy)  # before any other TensorFlow work (multi-worker needs it)
    chief = strategy_is_chief(strategy)
    backup = None
    if not chief:  # only the chief writes the run; this worker's scratch goes and is removed
        run_dir = tempfile.mkdtemp(prefix="monitor-worker-")
        print("This worker is not the chief: the chief writes the run, this worker keeps nothing.",
              file=out, flush=True)
    elif resume_dir is not None:
        run_dir = resume_dir
        backup = latest_backup(run_dir)
        done = backup.epochs_done if backup else 0
        batches = math.ceil(len(splits.x_train) / c.batch_size)  # optimizer steps per epoch
        truncate_run(run_dir, done, done * batches)  # whatever was written after the last committed epoch
        print(f"Resuming:      {run_dir} after epoch {done} of {c.epochs}", file=out)
        print(f"Watch it:      tensorboard --logdir {c.logdir}", file=out, flush=True)
    else:
        run_dir = runs.create_run_dir(runs.run_dir_path(c.logdir, c.dataset, c.model, c.run_name))
        print(f"Run directory: {run_dir}", file=out)
        print(f"Watch it:      tensorboard --logdir {c.logdir}", file=out, flush=True)
    try:
        return _train(c, strategy, chief, splits, run_dir, backup, start, out)
    except BaseException:
        # A run that never finished an epoch holds nothing worth keeping.
        if chief and latest_backup(run_dir) is None and not _completed(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)


def _completed(run_dir: str) -> bool:
    record = runs.read_record(run_dir)
    return bool(record) and record.get("status") != "running"


class NonFiniteLoss(MonitorError):
    """The training loss became NaN or infinite (train.py exits with 3)."""


def _train(c: RunConfig, strategy, chief: bool, splits, run_dir: str, backup, start: float, out) -> dict:
    ds = splits.dataset
    x_tr, y_tr, x_val, y_val = splits.x_train, splits.y_train, splits.x_val, splits.y_val
    num_classes = len(ds.class_names)
    initial_epoch = backup.epochs_done if backup else 0
    with strategy.scope():
        model = seeded_model(c, ds.x_train.shape[1:], num_classes)
        if backup is not None:  # weights and optimizer state of the last committed epoch
            model.optimizer.build(model.trainable_variables)
            model.load_weights(backup.weights_path)
    enable_keras_multiworker(model)  # keras-team/keras#20585; nothing outside multi-worker runs
    train_ds = make_dataset(*prepare_arrays(x_tr, y_tr, c.model, num_classes), c.batch_size, True, c.seed)
    val_ds = make_dataset(*prepare_arrays(x_val, y_val, c.model, num_classes), c.batch_size, False, c.seed)
    # Each iterator made of `train_ds` draws the next seeded reshuffle, and Keras 3's `fit` makes
    # two per epoch (at its start and at its end). A resumed run makes those of the epochs it
    # skips, so epoch k sees the order it would have seen uninterrupted (tested: the resumed
    # history equals the uninterrupted one).
    for _ in range(ITERATORS_PER_EPOCH * initial_epoch):
        iter(train_ds)

    existing = runs.read_record(run_dir) if chief else None  # a resumed run's record
    writers = SummaryWriters(run_dir, writing=chief)
    if existing is None:  # a resumed run has its flags text and graph already
        writers.submit("monitor", lambda: summaries.text("run/flags", flags_markdown(c), 0))
    histogram_freq = 1 if c.histograms else 0
    if c.suite:
        callbacks = monitoring_callbacks(
            ds.class_names, run_dir, histogram_freq=histogram_freq,
            confusion_matrix=c.confusion_matrix, per_class=c.per_class,
            prediction_grid=c.prediction_grid, pr_curves=c.pr_curves,
            every_n_epochs=c.every_n_epochs, grid_size=c.grid_size, grid_columns=c.grid_columns,
            probability_images=c.probability_images, confused_pairs=c.confused_pairs,
            epochs_per_tag=c.epochs_per_tag, mistakes=c.mistakes, mistakes_grid=c.mistakes_grid,
            writers=writers, tensorboard=False,
        )
    else:
        callbacks = []
    keras_board = ChiefTensorBoard(run_dir, histogram_freq=histogram_freq, write_graph=existing is None)
    guard = StopOnNonFiniteLoss()
    history = keras.callbacks.History()
    callbacks = [guard, keras_board, *callbacks, history]
    early_stop = None
    if c.early_stopping:
        early_stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=c.early_stopping, restore_best_weights=True)
        callbacks.append(early_stop)

    metrics_path = os.path.join(run_dir, runs.METRICS_FILE)
    record = existing or {
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
    if existing is not None:
        record.setdefault("resumed", []).append({"after_epoch": initial_epoch, "at": round(time.time())})
    record.update(status="running", resume_command=resume_command(run_dir))

    def committed(done: int, hist: dict) -> None:  # on the writer thread, after epoch `done`'s summaries
        runs.write_json(metrics_path, record | {"epochs_run": done, "history": hist})

    if chief:
        runs.write_json(metrics_path, record | {"epochs_run": initial_epoch,
                                                "history": backup.history if backup else {}})
        kill, hold = _fault_injection()
        callbacks.append(EpochBackupCallback(
            run_dir, writers, history, past_history=backup.history if backup else None,
            flush=[keras_board], skip=lambda: guard.tripped is not None, on_commit=committed,
            before_commit=kill))
        if hold is not None:
            callbacks.append(hold)
    fit_start = time.time()
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=c.epochs, callbacks=callbacks, shuffle=False,
                  initial_epoch=initial_epoch, verbose=2 if os.environ.get("CI") else "auto")
    except KeyboardInterrupt as interrupt:
        writers.close()  # every queued summary, and the commit of the last finished epoch
        if chief and (last := latest_backup(run_dir)) is not None:
            interrupt.record = record | {
                "status": "interrupted", "signal": getattr(interrupt, "signal_name", "SIGINT"),
                "epochs_run": last.epochs_done, "history": last.history,
                "wall_time_s": round(time.time() - start, 2)}
            runs.write_json(metrics_path, interrupt.record)
        raise
    fit_seconds = time.time() - fit_start
    writers.flush()  # the last epoch's summaries and backup commit
    hist = merge_history(backup.history if backup else None, history)
    if guard.tripped is not None:
        writers.close()
        last = latest_backup(run_dir) if chief else None
        message = guard.message(c.learning_rate)
        if chief:
            runs.write_json(metrics_path, record | {
                "status": "failed: non-finite loss", "error": message,
                "epochs_run": last.epochs_done if last else 0,
                "history": hist, "wall_time_s": round(time.time() - start, 2)})
        raise NonFiniteLoss(message)
    epochs_run = len(hist.get("loss", []))
    # restore_best_weights puts the best epoch's weights back when fit ends, stopped early or not:
    # the saved and tested model is that epoch's.
    weights_epoch = epochs_run
    if early_stop is not None and early_stop.best_weights is not None:
        weights_epoch = early_stop.best_epoch + 1  # an absolute epoch index, resumed or not
    suite_seconds = seconds_on_training_thread(callbacks) if c.suite else None
    if not chief:
        writers.close()
        print(f"Worker done: {epochs_run} epochs in {fit_seconds:.0f} s; the chief saves and tests.",
              file=out, flush=True)
        return record | {"status": "completed", "epochs_run": epochs_run}

    model_path = os.path.join(run_dir, MODEL_FILE)
    model.save(model_path)
    reloaded = runs.load_model_safely(model_path)
    test_logs, test_cm = evaluate_with_confusion(
        reloaded, *prepare_arrays(ds.x_test, ds.y_test, c.model, num_classes), c.batch_size, num_classes
    )
    step = epochs_run - 1
    restored = weights_epoch != epochs_run
    title = (f"Test confusion matrix after {epochs_run} epochs"
             + (f" (weights of epoch {weights_epoch})" if restored else "")
             + f", accuracy {accuracy(test_cm):.3f}")

    def write_test() -> None:
        write_confusion_summaries(test_cm, ds.class_names, title, step, top_pairs=c.confused_pairs,
                                  split="test")
        write_per_class_summaries(test_cm, ds.class_names, step)
        summaries.scalars({"test/loss": test_logs["loss"], "test/accuracy": test_logs["accuracy"]}, step)

    writers.submit("test", write_test)
    writers.close()
    runs.write_confusion_csv(os.path.join(run_dir, runs.TEST_CONFUSION_FILE), test_cm, ds.class_names)

    at = {k: v[weights_epoch - 1] for k, v in hist.items()}
    pc = per_class(test_cm)
    record.pop("resume_command", None)
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
    try:
        write_hparams_file(run_dir, record, model.get_config())
    except Exception as err:  # noqa: BLE001 - a finished, tested run must not be lost to its HParams
        warnings.warn(f"monitor: cannot write the HParams summaries: {type(err).__name__}: {err}",
                      RuntimeWarning, stacklevel=2)
    runs.write_json(metrics_path, record)
    remove_backups(run_dir)  # a completed run is never resumed
    try:
        build_report(run_dir)
    except Exception as err:  # noqa: BLE001 - the run is complete; its report can be rebuilt
        warnings.warn(f"monitor: cannot write report.html ({type(err).__name__}: {err}); rebuild it with "
                      f"python -m monitor.report {run_dir}", RuntimeWarning, stacklevel=2)
    print(f"Test accuracy {test_logs['accuracy']:.4f}, loss {test_logs['loss']:.4f} "
          f"({epochs_run} epochs, {record['wall_time_s']:.0f} s"
          + (f"; weights of epoch {weights_epoch}, restored by early stopping)" if restored else ")"),
          file=out)
    print(f"Run directory: {run_dir}", file=out)
    print(f"Report:        {os.path.join(run_dir, 'report.html')}", file=out)
    print(f"Open it:       tensorboard --logdir {c.logdir}", file=out, flush=True)
    return record


def _fault_injection():
    """For tests: `MONITOR_FAULT_INJECTION=kill-before-commit:N` SIGKILLs this process after
    epoch N's summaries are on disk and before its backup is committed, the hardest
    moment for a resume. Returns `(kill, hold)`: `kill` is the backup's `before_commit`
    hook (writer thread); `hold` a callback that keeps the training thread at the end of
    epoch N until then, so that nothing of epoch N+1 reaches the disk first, whatever the
    writer thread still has queued. Unset (always, outside tests): `(None, None)`."""
    fault = os.environ.get("MONITOR_FAULT_INJECTION", "")
    if not fault.startswith("kill-before-commit:"):
        return None, None
    at = int(fault.split(":", 1)[1])

    def kill(done: int) -> None:
        if done == at:
            os.kill(os.getpid(), signal.SIGKILL)

    class Hold(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == at:
                threading.Event().wait(600)  # the writer thread kills the process meanwhile

    return kill, Hold()


def resume_command(run_dir: str) -> str:
    return f"python train.py --resume {shlex.quote(run_dir)}"


def evaluate_with_confusion(model, x, y, batch_size: int, num_classes: int):
    """`model.evaluate` on (x, y) and the confusion matrix streamed from the same pass."""
    capture = EvaluationCapture(num_classes, sample_slots=0)
    capture.attach(model)
    try:
        logs = model.evaluate(make_dataset(x, y, batch_size, False, 0), verbose=0, return_dict=True)
    finally:
        capture.detach()
    return logs, capture.read().confusion
