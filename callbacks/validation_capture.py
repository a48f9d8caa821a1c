"""ValidationCaptureCallback: streaming state from Keras' own validation pass."""

from __future__ import annotations

import time
import warnings

import keras

from monitor.capture import EvaluationCapture, EvaluationState


class ValidationCaptureCallback(keras.callbacks.Callback):
    """Collects confusion counts, PR histograms and sample images while `fit` validates.

    The other suite callbacks read `state_for(epoch)` in `on_epoch_end`; it is
    None for an epoch without a validation pass (then they write nothing).

    ```python
    capture = ValidationCaptureCallback(num_classes=10)
    model.fit(x, y, validation_split=0.3, callbacks=[capture, ConfusionMatrixCallback(...)])
    ```
    """

    def __init__(self, num_classes: int, samples_per_class: int = 2, num_thresholds: int = 101,
                 from_logits: bool | None = None):
        super().__init__()
        if samples_per_class < 1:
            raise ValueError(
                "Invalid value for argument `samples_per_class`. "
                f"Received: samples_per_class={samples_per_class}"
            )
        if num_thresholds < 2:
            raise ValueError(
                f"Invalid value for argument `num_thresholds`. Received: num_thresholds={num_thresholds}"
            )
        self.capture = EvaluationCapture(
            num_classes, num_thresholds=num_thresholds,
            samples_per_class=samples_per_class, from_logits=from_logits,
        )
        self._epoch: int | None = None
        self._state: EvaluationState | None = None
        self._state_epoch: int | None = None
        self._warned = False
        self.seconds_on_training_thread = 0.0  # resetting and reading the state

    def on_train_begin(self, logs=None):
        self.capture.attach(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_test_begin(self, logs=None):
        start = time.perf_counter()
        self.capture.reset()
        self.seconds_on_training_thread += time.perf_counter() - start

    def on_test_end(self, logs=None):
        if self._epoch is not None:
            start = time.perf_counter()
            self._state = self.capture.read()
            self._state_epoch = self._epoch
            self.seconds_on_training_thread += time.perf_counter() - start

    def on_train_end(self, logs=None):
        self.capture.detach()
        self._epoch = None

    def state_for(self, epoch: int) -> EvaluationState | None:
        """The validation state of `epoch`, or None (warned once) if it had no validation pass."""
        if self._state_epoch == epoch and self._state is not None and self._state.count > 0:
            return self._state
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"monitor: epoch {epoch + 1} had no validation pass (no validation data, or "
                "validation_freq > 1); the monitoring suite writes nothing for such epochs",
                stacklevel=2,
            )
        return None
