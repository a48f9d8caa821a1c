"""Ctrl-C and SIGTERM that stop a run even when Python swallows the interrupt.

A signal raises KeyboardInterrupt (`Terminated` for SIGTERM) wherever the main thread is. When
that is inside a finalizer (TensorFlow frees tensors and iterators in `__del__`), Python prints
"Exception ignored" and goes on, and the run would train to its end. So the handler also keeps
the interrupt, and `ReRaiseInterrupt`, the run's first callback, raises it again at the next
batch or epoch end.
"""

from __future__ import annotations

import signal

import keras

_pending: KeyboardInterrupt | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, Slurm, Kubernetes), unwound like Ctrl-C; exit code 143."""

    signal_name = "SIGTERM"


def _on_signal(signum, frame):
    global _pending
    _pending = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    raise _pending


def install() -> None:
    """SIGINT and SIGTERM raise (and keep) the interrupt; call from the main thread."""
    clear()
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def clear() -> None:
    global _pending
    _pending = None


class ReRaiseInterrupt(keras.callbacks.Callback):
    """Raises a kept interrupt that Python swallowed, at the next batch or epoch end."""

    def _check(self) -> None:
        if _pending is not None:
            raise _pending

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_test_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()
