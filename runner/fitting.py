"""The fit step: `model.fit` with the callbacks, an interrupt, a non-finite loss or a write that
failed (a full disk) recorded."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

from callbacks.suite import seconds_on_training_thread
from monitor import interrupts, storage
from monitor.errors import StorageError
from monitor.runfiles import backups, record
from runner import status
from runner.inputs import datasets


@dataclass(frozen=True)
class FitResult:
    """What `fit` leaves for the finish: the merged history and which epoch's weights the model has."""

    history: dict[str, list[float]]
    epochs_run: int
    weights_epoch: int  # early stopping may restore an earlier epoch's weights
    fit_seconds: float
    suite_seconds: float | None
    early_stopped: bool
    tripped: str | None  # the message, when the loss became non-finite
    alerts: list[dict] | None = None  # the alarms said (metrics.json's `alerts`); None: alarms off


def fit(r, model, callbacks: dict) -> FitResult:
    """Train `model` from the run's initial epoch; on KeyboardInterrupt, record the run as
    interrupted (the last committed epoch kept) and re-raise with `.record` set; on a write that
    failed (StorageError), record the run as failed where that can still be written and raise
    a StorageError whose message says what failed and how to resume."""
    c = r.config
    train_ds, val_ds = datasets(c, r.splits, len(r.class_names), r.initial_epoch)
    fit_start = time.time()
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=c.epochs, callbacks=callbacks["all"],
                  shuffle=False, initial_epoch=r.initial_epoch,
                  verbose=2 if os.environ.get("CI") else "auto")
    except KeyboardInterrupt as interrupt:
        interrupts.clear()  # honoured: nothing left to raise again
        r.writers.close()  # every queued summary, and the commit of the last finished epoch
        if r.chief and (last := backups.latest(r.run_dir)) is not None:
            interrupt.record = status.interrupted(r.record, getattr(interrupt, "signal_name", "SIGINT"),
                                                  last, r.start,
                                                  status.alerts_until(callbacks["alarms"], last.epochs_done))
            record.write(r.run_dir, interrupt.record)
        raise
    except StorageError as err:
        raise _storage_failed(r, callbacks, err) from None
    except Exception as err:  # Keras' TensorBoard callback writing on a full disk, for one
        if not storage.is_storage_error(err):
            raise
        raise _storage_failed(r, callbacks, _first_failure(r, callbacks, err)) from None
    fit_seconds = time.time() - fit_start
    r.writers.flush()  # the last epoch's summaries and backup commit
    if r.writers.storage_failure is not None:  # the last epoch's summaries could not be written
        raise _storage_failed(r, callbacks, _first_failure(r, callbacks, None))
    history = backups.merge_history(r.backup.history if r.backup else None, callbacks["history"].history)
    tripped = None
    if callbacks["guard"].tripped is not None:
        tripped = _record_failure(r, callbacks["guard"].message(c.learning_rate), history,
                                  status.alerts_until(callbacks["alarms"], len(history.get("loss", []))))
    return _result(r, callbacks, history, fit_seconds, tripped)


def _record_failure(r, message: str, history: dict, alerts: list[dict] | None) -> str:
    r.writers.close()
    if r.chief:
        record.write(r.run_dir, status.failed(r.record, message, backups.latest(r.run_dir), history, r.start,
                                              alerts))
    return message


def _first_failure(r, callbacks: dict, err: BaseException | None) -> StorageError:
    """The first write that failed: the writer thread's, or else `err` (Keras' TensorBoard's)."""
    epoch = callbacks["backup"].epoch + 1 if callbacks.get("backup") else r.initial_epoch + 1
    what, first = "writing Keras' TensorBoard summaries", err
    if r.writers.storage_failure is not None:
        what, first = r.writers.storage_failure
        what = f"writing the run's files ({what})"
    return StorageError(str(first), storage.Failure(what, epoch, first))


def _storage_failed(r, callbacks: dict, err: StorageError) -> StorageError:
    """Record the failure in metrics.json, close what is open (quietly: it may fail again) and
    record it again with the epochs committed meanwhile; where even that cannot be written,
    metrics.json keeps its last whole version. Returns the error to print."""
    failure = err.failure or storage.Failure("writing the run's files", r.initial_epoch + 1, err)
    r.record.update(status=failure.status, error=str(failure.error))  # a commit now records it too
    _record_storage_failure(r, callbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r.writers.close()  # the commit of an epoch whose summaries are all on disk still happens
        try:
            callbacks["board"]._close_writers()
        except Exception:  # noqa: BLE001,S110 - Keras' writers on a full disk: nothing more to save
            pass
    backups.discard(r.run_dir)  # uncommitted backups: space back, the committed ones untouched
    last = _record_storage_failure(r, callbacks)
    return storage.stop_error(failure, r.run_dir, last.epochs_done if last else 0,
                              status.resume_command(r.run_dir))


def _record_storage_failure(r, callbacks: dict):
    """Write the failed run's record (where it can be written); returns the last committed backup."""
    last = backups.latest(r.run_dir) if r.chief else None
    if r.chief and os.path.isdir(r.run_dir):
        try:
            record.write(r.run_dir, status.storage_failed(
                r.record, r.record["status"], r.record["error"], last, r.start,
                status.alerts_until(callbacks["alarms"], last.epochs_done if last else 0)))
        except OSError:
            pass  # metrics.json keeps its last whole version (written atomically)
    return last


def _result(r, callbacks: dict, history: dict, fit_seconds: float, tripped: str | None) -> FitResult:
    epochs_run = len(history.get("loss", []))
    # restore_best_weights puts the best epoch's weights back when fit ends, stopped early or not:
    # the saved and tested model is that epoch's.
    weights_epoch = epochs_run
    early_stop = callbacks["early_stop"]
    if early_stop is not None and early_stop.best_weights is not None:
        weights_epoch = early_stop.best_epoch + 1  # an absolute epoch index, resumed or not
    return FitResult(
        history=history, epochs_run=epochs_run, weights_epoch=weights_epoch, fit_seconds=fit_seconds,
        suite_seconds=seconds_on_training_thread(callbacks["all"]) if r.config.suite else None,
        early_stopped=bool(r.config.early_stopping) and epochs_run < r.config.epochs, tripped=tripped,
        alerts=status.alerts_until(callbacks["alarms"], epochs_run))
