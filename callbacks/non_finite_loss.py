"""StopOnNonFiniteLoss: end `fit` at the first NaN or infinite training loss, saying where."""

from __future__ import annotations

import math

import keras


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Like Keras' `TerminateOnNaN`, but remembers where it happened.

    After `fit`, `tripped` is None or `(epoch, batch, loss)` (1-based epoch and
    batch) of the first non-finite training loss; `fit` stopped right there.

    ```python
    guard = StopOnNonFiniteLoss()
    model.fit(..., callbacks=[guard])
    if guard.tripped: ...
    ```
    """

    def __init__(self):
        super().__init__()
        self.tripped: tuple[int, int, float] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.tripped is not None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self.tripped = (self._epoch + 1, batch + 1, loss)
            self.model.stop_training = True

    def message(self, learning_rate: float | None = None) -> str:
        epoch, batch, loss = self.tripped
        hint = f" (now {learning_rate:g})" if learning_rate is not None else ""
        return (f"the training loss became {loss} at epoch {epoch}, batch {batch}: training stopped. "
                f"Try a lower --learning-rate{hint}; every epoch before it is kept")
