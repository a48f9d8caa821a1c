"""EpochBackupCallback: a backup per epoch, committed only once that epoch's summaries are on disk."""

from __future__ import annotations

import contextlib
import io

import keras

from monitor import storage
from monitor.errors import StorageError
from monitor.runfiles import backups
from monitor.writers import SummaryWriters


class EpochBackupCallback(keras.callbacks.Callback):
    """Saves weights (optimizer state included) and the history at every epoch end.

    The weights go to `<run>/backup/.partial-NNNN` on the training thread; renaming
    it to `epoch-NNNN` (the commit) is queued on `writers`' background thread,
    after the summaries of that epoch, and done once every event file (Keras'
    TensorBoard callback's included: pass them as `flush`) is flushed. A run
    killed at any moment thus has a last committed epoch whose summaries are all
    on disk, and nothing committed beyond what was written. `skip()` returning True
    (a non-finite loss) saves nothing for that epoch. `on_commit(done, history)` runs
    on the writer thread after each commit; `before_commit(done)` just before it.

    A backup that cannot be written for a full disk, a read-only file system or a removed run
    directory (`monitor.storage`) stops `fit` at once with a `StorageError`: its partial backup
    is removed and the last committed one stays as it was. So does such a failure of `writers`
    built with `stop_on_storage_error=True` (checked after every batch); no epoch is committed
    after it, as its summaries may not all be on disk.

    ```python
    backup = EpochBackupCallback("logs/run1", writers, history=history)
    model.fit(..., callbacks=[*suite, backup])
    ```
    """

    def __init__(self, run_dir: str, writers: SummaryWriters, history: keras.callbacks.History,
                 past_history: dict[str, list[float]] | None = None, flush=(), skip=lambda: False,
                 keep: int = 2, on_commit=None, before_commit=None):
        super().__init__()
        self.run_dir = run_dir
        self.writers = writers
        self.history = history
        self.past_history = {k: list(v) for k, v in (past_history or {}).items()}
        self.flush = flush
        self.skip = skip
        self.keep = keep
        self.on_commit = on_commit
        self.before_commit = before_commit
        self.epoch = 0  # the epoch (0-based) in progress, or the last one ended

    def merged_history(self) -> dict[str, list[float]]:
        """Earlier epochs (before a resume) followed by this fit's."""
        return backups.merge_history(self.past_history, self.history.history)

    def history_after(self, done: int, logs) -> dict[str, list[float]]:
        """The history of epochs 1..`done`; Keras' History fills in after this hook, so the
        last epoch's values come from `logs`."""
        history = {k: v[:done] for k, v in self.merged_history().items()}
        for k, v in (logs or {}).items():
            if len(history.get(k, [])) < done:
                history.setdefault(k, []).append(float(v))
        return history

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check_writers()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch
        self._check_writers()
        if self.skip():
            return
        done = epoch + 1
        history = self.history_after(done, logs)
        with _stop_on_storage_error(f"writing the backup of epoch {done}", done, self.run_dir):
            partial = backups.start(self.run_dir, done)
            backups.write_weights(partial, weights_h5(self.model))
            backups.write_state(partial, done, history)
        with _stop_on_storage_error(f"writing Keras' TensorBoard summaries of epoch {done}", done,
                                    self.run_dir):
            for callback in self.flush:
                callback.flush_writers()

        def commit() -> None:
            if self.writers.storage_failure is not None:
                return  # this epoch's summaries may not all be on disk: never committed
            if self.before_commit is not None:
                self.before_commit(done)
            backups.commit(self.run_dir, done, self.keep)
            if self.on_commit is not None:
                self.on_commit(done, history)

        self.writers.submit_after_flush(commit, what=f"committing the backup of epoch {done}")

    def _check_writers(self) -> None:
        """Raise a StorageError for what the writer thread could not write."""
        if self.writers.storage_failure is not None:
            what, error = self.writers.storage_failure
            what = f"writing the run's files ({what})"
            raise StorageError(f"{what}: {error}", storage.Failure(what, self.epoch + 1, error))


@contextlib.contextmanager
def _stop_on_storage_error(what: str, done: int, run_dir: str):
    """Turns a storage failure inside the block into a StorageError (the partial backup removed)."""
    try:
        yield
    except Exception as error:
        if not storage.is_storage_error(error):
            raise
        backups.discard(run_dir, done)
        raise StorageError(f"{what}: {error}", storage.Failure(what, done, error)) from None


def weights_h5(model: keras.Model) -> bytes:
    """What `model.save_weights(path)` writes (weights and optimizer state), as bytes in memory:
    a full disk then fails one plain write, and leaves no HDF5 file open on it (h5py's failing
    finalisers crash the process). Falls back to a temporary file where Keras' internals differ."""
    try:
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                               visited_saveables=set())
        store.close()
        return buffer.getvalue()
    except (ImportError, AttributeError, TypeError):  # another Keras: its public path instead
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, backups.WEIGHTS_FILE)
            model.save_weights(path)
            with open(path, "rb") as f:
                return f.read()
