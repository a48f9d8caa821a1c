"""Ctrl-C stops a run even when the interrupt lands where Python swallows it (a finaliser)."""

from __future__ import annotations

import os
import signal
import sys

import keras
import pytest

from callbacks import ReRaiseInterrupt
from monitor import interrupts
from tests.helpers import tiny_data, tiny_model


class _Finaliser:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100_000):  # the handler runs here, inside __del__: Python ignores what it raises
            pass


class _InterruptInsideAFinaliser(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            _Finaliser()  # made and freed at once


@pytest.fixture
def installed():
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupts.install()
    yield
    interrupts.clear()
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


def _fit(extra, seen: list[int]) -> None:
    """Fit 5 epochs; the interrupt comes at the end of epoch index 1; `seen` gets each epoch ended."""
    x, y = tiny_data(60)
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    tiny_model().fit(x, y, epochs=5, verbose=0, callbacks=[*extra, _InterruptInsideAFinaliser(), record])


def test_python_swallows_an_interrupt_raised_in_a_finaliser(installed, monkeypatch):
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: ignored.append(info.exc_type))
    seen: list[int] = []
    _fit([], seen)
    assert seen == [0, 1, 2, 3, 4]  # without the re-raise: the run trains to its end
    assert ignored == [KeyboardInterrupt]  # "Exception ignored in ... __del__"


def test_the_kept_interrupt_is_raised_again_at_the_next_batch(installed, monkeypatch):
    monkeypatch.setattr(sys, "unraisablehook", lambda info: None)
    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        _fit([ReRaiseInterrupt()], seen)
    assert seen == [0, 1]  # stopped in the epoch after the swallowed interrupt


def test_sigterm_is_kept_as_terminated(installed):
    with pytest.raises(interrupts.Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):
            pass
    with pytest.raises(interrupts.Terminated):
        ReRaiseInterrupt().on_epoch_end(0)
