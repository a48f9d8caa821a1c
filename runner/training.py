"""One training run, start to end, in three steps: prepare, fit, finish.

```python
record = run(RunConfig(model="dropout").resolved())   # what train.py --model dropout does
```
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import keras

from callbacks.chief_tensorboard import ChiefTensorBoard
from callbacks.epoch_backup import EpochBackupCallback
from callbacks.non_finite_loss import StopOnNonFiniteLoss
from callbacks.reraise_interrupt import ReRaiseInterrupt
from callbacks.suite import monitoring_callbacks, suite_alarms
from monitor import data as data_mod
from monitor import runs, storage, summaries
from monitor.alarms import EpochStats
from monitor.distribution import enable_keras_multiworker, make_strategy, strategy_is_chief
from monitor.errors import MonitorError, StorageError
from monitor.resume import truncate_run
from monitor.runfiles import SUITE_DIR, TEST_DIR, backups, matrices, model_file, record
from monitor.settings import RunConfig
from monitor.writers import SummaryWriters
from runner import finish, status
from runner.fitting import FitResult, fit
from runner.hooks import NONE, RunHooks
from runner.inputs import seeded_model


class NonFiniteLoss(MonitorError):
    """The training loss became NaN or infinite (train.py exits with 3)."""


@dataclass
class Run:
    """What the steps of one run share."""

    config: RunConfig
    splits: data_mod.Splits
    strategy: object
    chief: bool
    run_dir: str
    backup: backups.Backup | None
    resumed: bool
    start: float
    out: object
    hooks: RunHooks = NONE
    writers: SummaryWriters | None = None
    record: dict = field(default_factory=dict)

    @property
    def initial_epoch(self) -> int:
        return self.backup.epochs_done if self.backup else 0

    @property
    def class_names(self) -> list[str]:
        return self.splits.dataset.class_names


def run(config: RunConfig, splits: data_mod.Splits | None = None, out=sys.stdout,
        resume_dir: str | None = None, hooks: RunHooks = NONE) -> dict:
    """Train, monitor, save and test one run; returns the metrics.json content.

    `resume_dir`: continue that (killed) run from its last committed backup; `config`
    must be its recorded flags. Raises MonitorError for bad input before anything is
    written, NonFiniteLoss when the loss stops being finite, StorageError when a file of the
    run cannot be written (a full disk: the run stops at once, its last committed epoch kept),
    and KeyboardInterrupt (Terminated for SIGTERM) after recording an interrupted run.
    """
    start = time.time()
    c = config.resolved()
    if splits is None:
        splits = data_mod.load_splits(c.dataset, c.data_dir, c.val_split, c.seed, c.limit, c.classes)
    strategy = make_strategy(c.strategy)  # before any other TensorFlow work (multi-worker needs it)
    chief = strategy_is_chief(strategy)
    run_dir, backup = _open_run_dir(c, chief, splits, resume_dir, out)
    r = Run(c, splits, strategy, chief, run_dir, backup, resume_dir is not None, start, out, hooks)
    try:
        with _stop_on_storage_error(r, "starting the run"):
            model, callbacks = prepare(r)
        result = fit(r, model, callbacks)
        if result.tripped is not None:
            raise NonFiniteLoss(result.tripped)
        with _stop_on_storage_error(r, "saving and testing the model"):
            return finish.finish(r, model, result)
    except BaseException:
        # A run that never finished an epoch holds nothing worth keeping.
        if chief and backups.latest(run_dir) is None and not _completed(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)


def _open_run_dir(c: RunConfig, chief: bool, splits, resume_dir: str | None, out):
    """(run directory, last committed backup): a new one, a resumed one cut back to its last
    committed epoch, or a scratch directory on a worker that is not the chief."""
    if not chief:  # only the chief writes the run; this worker's scratch goes and is removed
        print("This worker is not the chief: the chief writes the run, this worker keeps nothing.",
              file=out, flush=True)
        return tempfile.mkdtemp(prefix="monitor-worker-"), None
    if resume_dir is not None:
        backup = backups.latest(resume_dir)
        done = backup.epochs_done if backup else 0
        batches = math.ceil(len(splits.x_train) / c.batch_size)  # optimizer steps per epoch
        damaged: dict[str, str] = {}
        with _stop_on_storage_error(Run(c, splits, None, chief, resume_dir, backup, True, 0.0, out),
                                    f"cutting the run back to epoch {done}"):
            truncate_run(resume_dir, done, done * batches, damaged)  # what came after the last commit
        for path, what in damaged.items():
            print(f"Repaired:      {path}: {what}", file=out)
        print(f"Resuming:      {resume_dir} after epoch {done} of {c.epochs}", file=out)
        print(f"Watch it:      tensorboard --logdir {c.logdir}", file=out, flush=True)
        return resume_dir, backup
    run_dir = runs.create_run_dir(runs.run_dir_path(c.logdir, c.dataset, c.model, c.run_name))
    print(f"Run directory: {run_dir}", file=out)
    print(f"Watch it:      tensorboard --logdir {c.logdir}", file=out, flush=True)
    return run_dir, None


@contextlib.contextmanager
def _stop_on_storage_error(r: Run, what: str):
    """A file that cannot be written in the block (a full disk) stops the run: what is open is
    closed quietly, metrics.json records the failure where it still can, the test results
    written so far go (a resume writes them again), and a StorageError says how to resume."""
    try:
        yield
    except StorageError:
        raise
    except Exception as err:
        if not storage.is_storage_error(err):
            raise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if r.writers is not None:
                r.writers.close()
        shutil.rmtree(os.path.join(r.run_dir, TEST_DIR), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.remove(model_file.path(r.run_dir))  # a model file cut short: the resumed run saves it again
        last, failure = backups.latest(r.run_dir), storage.Failure(what, 0, err)
        if r.record:
            with contextlib.suppress(OSError):
                record.write(r.run_dir, status.storage_failed(r.record, failure.status, str(err), last,
                                                              r.start))
        raise storage.stop_error(failure, r.run_dir, last.epochs_done if last else 0,
                                 status.resume_command(r.run_dir)) from None


def _completed(run_dir: str) -> bool:
    rec = record.read(run_dir)
    return bool(rec) and rec.get("status") != "running"


def prepare(r: Run) -> tuple[keras.Model, dict]:
    """The model (a resumed run's weights and optimizer state loaded), the writers, the first
    record, and the callbacks by role."""
    c = r.config
    with r.strategy.scope():
        model = seeded_model(c, r.splits.dataset.x_train.shape[1:], len(r.class_names))
        if r.backup is not None:  # weights and optimizer state of the last committed epoch
            model.optimizer.build(model.trainable_variables)
            model.load_weights(r.backup.weights_path)
    enable_keras_multiworker(model)  # keras-team/keras#20585; nothing outside multi-worker runs
    r.writers = SummaryWriters(r.run_dir, writing=r.chief, stop_on_storage_error=True)
    if not r.resumed:  # a resumed run has its flags text and graph already
        r.writers.submit(SUITE_DIR, lambda: summaries.text("run/flags", flags_markdown(c), 0))
    r.record = status.started(r, model)
    if r.chief:
        record.write(r.run_dir, status.with_epochs(r.record, r.initial_epoch,
                                                   r.backup.history if r.backup else {}))
    return model, _callbacks(r)


def _callbacks(r: Run) -> dict:
    """The fit's callbacks by role; `"all"` is the list in the order Keras calls them."""
    c = r.config
    histogram_freq = 1 if c.histograms else 0
    suite = monitoring_callbacks(r.class_names, r.run_dir, options=c.suite_options(), tensorboard=False,
                                 histogram_freq=histogram_freq, writers=r.writers) if c.suite else []
    roles = {"guard": StopOnNonFiniteLoss(), "history": keras.callbacks.History(), "suite": suite,
             "board": ChiefTensorBoard(r.run_dir, histogram_freq=histogram_freq, write_graph=not r.resumed),
             "early_stop": None, "alarms": suite_alarms(suite)}
    if roles["alarms"] is not None:
        roles["alarms"].out = r.out
        if r.backup is not None:  # a resumed run: its earlier epochs' alerts, said then, are kept
            roles["alarms"].replay(past_epochs(r.run_dir, r.backup.history))
    ordered = [roles["guard"], roles["board"], *suite, roles["history"]]
    if c.early_stopping:
        roles["early_stop"] = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=c.early_stopping, restore_best_weights=True)
        ordered.append(roles["early_stop"])
    if r.chief:
        ordered.append(roles.setdefault("backup", EpochBackupCallback(
            r.run_dir, r.writers, roles["history"], past_history=r.backup.history if r.backup else None,
            flush=[roles["board"]], skip=lambda: roles["guard"].tripped is not None,
            on_commit=lambda done, hist: record.write(r.run_dir, status.with_epochs(
                r.record, done, hist, status.alerts_until(roles["alarms"], done))),
            before_commit=r.hooks.before_commit)))
        ordered.extend(r.hooks.callbacks)
    roles["all"] = [ReRaiseInterrupt(), *ordered]
    return roles


def past_epochs(run_dir: str, history: dict[str, list[float]]) -> list[EpochStats]:
    """The epochs a resumed run already has, for its alarms: Keras' logs from the history and the
    validation confusion matrices from the run's JSONL."""
    confusion = {line.get("epoch"): line for line in matrices.read_lines(run_dir)}
    length = len(history.get("loss", []))
    return [EpochStats.from_confusion({k: v[i] for k, v in history.items() if i < len(v)},
                                      matrices.decode(confusion[i]) if i in confusion else None)
            for i in range(length)]


def flags_markdown(config: RunConfig) -> str:
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in config.as_dict().items())
    return "| flag | value |\n|---|---|\n" + rows


__all__ = ["FitResult", "NonFiniteLoss", "Run", "prepare", "run"]
