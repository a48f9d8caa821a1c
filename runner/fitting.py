"""The fit step: `model.fit` with the callbacks, an interrupt or a non-finite loss recorded."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from callbacks.suite import seconds_on_training_thread
from monitor import interrupts
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
    interrupted (the last committed epoch kept) and re-raise with `.record` set."""
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
    fit_seconds = time.time() - fit_start
    r.writers.flush()  # the last epoch's summaries and backup commit
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
