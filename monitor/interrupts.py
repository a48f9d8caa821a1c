"""Ctrl-C and SIGTERM that stop a run even when Python swallows the interrupt.

A signal raises KeyboardInterrupt (`Terminated` for SIGTERM) wherever the main thread is. When
that is inside a finalizer (TensorFlow frees tensors and iterators in `__del__`), Python prints
"Exception ignored" and goes on, and the run would train to its end. So the handler also keeps
the interrupt, and `callbacks.ReRaiseInterrupt`, the run's first callback, raises it again at
the next batch or epoch end. No TensorFlow here: train.py installs it before anything loads.
"""

from __future__ import annotations

import signal

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


def pending() -> KeyboardInterrupt | None:
    """The interrupt the handler raised, until `clear()`: set while it has not been honoured."""
    return _pending
