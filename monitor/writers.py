"""The one place where event files are opened, written and flushed.

TensorBoard follows one active event file per directory, so `SummaryWriters`
keeps a single `tf.summary` writer per directory, and runs rendering + writing
on one background thread so the training thread only hands work over.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import tensorflow as tf


class SummaryWriters:
    """Event-file writers of one run directory, plus an ordered work queue.

    Usage:
    ```python
    writers = SummaryWriters("logs/run1")
    writers.submit("monitor", lambda: summaries.text("note", "hello", step=0))
    writers.close()   # waits for queued work, flushes, closes
    ```
    `max_pending` bounds the queue: when rendering falls behind training,
    `submit` waits instead of letting work (and memory) pile up.
    """

    def __init__(self, logdir: str, max_pending: int = 16, background: bool = True):
        self.logdir = os.path.abspath(logdir)
        self.max_pending = max_pending
        self._writers: dict[str, tf.summary.SummaryWriter] = {}
        self._lock = threading.Lock()
        self._pending: deque[Future] = deque()
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-writer")
            if background
            else None
        )
        self.busy_seconds = 0.0  # time spent rendering/writing (any thread)
        atexit.register(self.close)  # Ctrl-C or no on_train_end: still drain

    def writer(self, subdir: str) -> tf.summary.SummaryWriter:
        path = os.path.join(self.logdir, subdir)
        with self._lock:
            if path not in self._writers:
                self._writers[path] = tf.summary.create_file_writer(path)
            return self._writers[path]

    def submit(self, subdir: str, work: Callable[[], None]) -> None:
        """Run `work()` with `subdir`'s writer as default; flushes afterwards."""
        writer = self.writer(subdir)

        def task() -> None:
            start = time.perf_counter()
            with writer.as_default():
                work()
            writer.flush()
            self.busy_seconds += time.perf_counter() - start

        if self._executor is None:
            task()
            return
        while len(self._pending) >= self.max_pending:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(task))

    def drain(self) -> None:
        """Wait for every submitted piece of work; re-raise the first failure."""
        error = None
        while self._pending:
            try:
                self._pending.popleft().result()
            except Exception as exc:  # keep draining, report once
                error = error or exc
        if error is not None:
            raise error

    def flush(self) -> None:
        self.drain()
        with self._lock:
            for w in self._writers.values():
                w.flush()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            with self._lock:
                for w in self._writers.values():
                    w.flush()
                    w.close()
                self._writers.clear()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            atexit.unregister(self.close)
