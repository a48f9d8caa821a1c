"""Small timing pieces shared by the benchmark workers (they import Keras; the parents do not)."""

from __future__ import annotations

import time


def validation_timer(seconds: list[float]):
    """A Keras callback appending each validation pass's wall seconds to `seconds`."""
    import keras

    class ValidationTimer(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            self._start = time.perf_counter()

        def on_test_end(self, logs=None):
            seconds.append(time.perf_counter() - self._start)

    return ValidationTimer()
