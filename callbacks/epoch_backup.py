"""EpochBackupCallback: a backup per epoch, committed only once that epoch's summaries are on disk."""

from __future__ import annotations

import os

import keras

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

    def on_epoch_end(self, epoch, logs=None):
        if self.skip():
            return
        done = epoch + 1
        partial = backups.start(self.run_dir, done)
        self.model.save_weights(os.path.join(partial, backups.WEIGHTS_FILE))
        history = self.history_after(done, logs)
        backups.write_state(partial, done, history)
        for callback in self.flush:
            callback.flush_writers()

        def commit() -> None:
            if self.before_commit is not None:
                self.before_commit(done)
            backups.commit(self.run_dir, done, self.keep)
            if self.on_commit is not None:
                self.on_commit(done, history)

        self.writers.submit_after_flush(commit)
