"""ReRaiseInterrupt: a Ctrl-C or SIGTERM that Python swallowed still stops `fit`."""

from __future__ import annotations

import keras

from monitor import interrupts


class ReRaiseInterrupt(keras.callbacks.Callback):
    """Raises, at the next batch or epoch end, an interrupt that `monitor.interrupts`' handler
    raised where Python ignores exceptions (a finaliser, `__del__`), so `fit` ran on.

    ```python
    interrupts.install()                       # in the main thread, once
    model.fit(..., callbacks=[ReRaiseInterrupt(), *others])
    ```
    """

    def _check(self) -> None:
        if interrupts.pending() is not None:
            raise interrupts.pending()

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_test_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()
