"""EpochBackupCallback: a backup per epoch, committed only once that epoch's summaries are on disk."""

from __future__ import annotations

import json
import os
import shutil

import keras

from monitor.resume import BACKUP_DIR, STATE_FILE, WEIGHTS_FILE
from monitor.writers import SummaryWriters


def merge_history(past: dict[str, list[float]] | None,
                  history: keras.callbacks.History) -> dict[str, list[float]]:
    """A resumed run's history: the epochs before the resume (`past`), then this fit's."""
    past = past or {}
    keys = set(past) | set(history.history)
    return {k: [float(v) for v in past.get(k, [])] + [float(v) for v in history.history.get(k, [])]
            for k in sorted(keys)}


class EpochBackupCallback(keras.callbacks.Callback):
    """Saves weights (optimizer state included) and the history at every epoch end.

    The weights go to `<run>/backup/.partial-NNNN` on the training thread; renaming
    it to `epoch-NNNN` (the commit) is queued on `writers`' background thread,
    after the summaries of that epoch, and done once every event file (Keras'
    TensorBoard callback's included: pass them as `flush`) is flushed. A run
    killed at any moment thus has a last committed epoch whose summaries are all
    on disk, and nothing committed beyond what was written. `skip()` returning True
    (a non-finite loss) saves nothing for that epoch.

    ```python
    backup = EpochBackupCallback("logs/run1", writers, history=history)
    model.fit(..., callbacks=[*suite, backup])
    ```
    """

    def __init__(self, run_dir: str, writers: SummaryWriters, history: keras.callbacks.History,
                 past_history: dict[str, list[float]] | None = None, flush=(), skip=lambda: False,
                 keep: int = 2, on_commit=None, before_commit=None):
        super().__init__()
        self.root = os.path.join(run_dir, BACKUP_DIR)
        self.writers = writers
        self.history = history
        self.past_history = {k: list(v) for k, v in (past_history or {}).items()}
        self.flush = flush
        self.skip = skip
        self.keep = keep
        self.on_commit = on_commit
        self.before_commit = before_commit  # tests: fault injection at the hardest moment

    def merged_history(self) -> dict[str, list[float]]:
        """Earlier epochs (before a resume) followed by this fit's."""
        return merge_history(self.past_history, self.history)

    def on_epoch_end(self, epoch, logs=None):
        if self.skip():
            return
        done = epoch + 1
        partial = os.path.join(self.root, f".partial-{done:04d}")
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        self.model.save_weights(os.path.join(partial, WEIGHTS_FILE))
        history = self.merged_history()
        history = {k: v[:done] for k, v in history.items()}  # History fills in after this hook
        if logs:
            for k, v in logs.items():
                if len(history.get(k, [])) < done:
                    history.setdefault(k, []).append(float(v))
        with open(os.path.join(partial, STATE_FILE), "w", encoding="utf-8") as f:
            json.dump({"epochs_done": done, "history": history}, f, allow_nan=True)
        for callback in self.flush:
            callback.flush_writers()

        def commit() -> None:
            if self.before_commit is not None:
                self.before_commit(done)
            os.replace(partial, os.path.join(self.root, f"epoch-{done:04d}"))
            for name in sorted(os.listdir(self.root))[:-self.keep]:
                if name.startswith("epoch-"):
                    shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
            if self.on_commit is not None:
                self.on_commit(done, history)

        self.writers.submit_after_flush(commit)
