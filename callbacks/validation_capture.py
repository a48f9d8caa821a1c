"""ValidationCaptureCallback: streaming state from Keras' own validation pass."""

from __future__ import annotations

import threading
import time
import warnings

import keras

from monitor.capture import EvaluationCapture, EvaluationState
from monitor.gil import quick_handover
from monitor.heads import MULTI_LABEL
from monitor.pretrace import trace_validation_ahead, wait_for_first_step
from monitor.settings import SuiteOptions

DEFAULTS = SuiteOptions()


class ValidationCaptureCallback(keras.callbacks.Callback):
    """Collects confusion counts, PR histograms, sample images and the most confident
    mistakes while `fit` validates.

    The other suite callbacks read `state_for(epoch)` in `on_epoch_end`; it is
    None for an epoch without a validation pass (then they write nothing).
    If the capture cannot attach to the model or read its state, it warns once
    and stays off for the run; `fit` goes on. While the first epoch trains, a background thread
    traces the validation step ahead (`monitor.pretrace`), so the first validation pass does
    not. `output` (a name or an index) chooses
    which output of a model with several it reads; None: the model's only output. `head`
    ("auto", "single_label", "binary", "multi_label") says how that output is read.

    ```python
    capture = ValidationCaptureCallback(num_classes=10)
    model.fit(x, y, validation_split=0.3, callbacks=[capture, ConfusionMatrixCallback(...)])
    ```
    """

    def __init__(self, num_classes: int, sample_slots: int = DEFAULTS.grid_size, num_thresholds: int = 101,
                 from_logits: bool | None = None, mistakes: int = DEFAULTS.mistakes,
                 threshold: float = DEFAULTS.threshold, output: str | int | None = None,
                 head: str = DEFAULTS.head):
        super().__init__()
        self.capture = EvaluationCapture(
            num_classes, num_thresholds=num_thresholds,
            sample_slots=sample_slots, from_logits=from_logits, mistakes=mistakes,
            threshold=threshold, output=output, head=head,
        )
        self._epoch: int | None = None
        self._state: EvaluationState | None = None
        self._state_epoch: int | None = None
        self._warned = False
        self.failed: str | None = None  # what went wrong, once the capture turned itself off
        self.seconds_on_training_thread = 0.0  # resetting and reading the state
        self.traced_ahead: bool | None = None  # the validation step traced ahead? (None: not tried)
        self._ahead: threading.Thread | None = None
        self._validating = threading.Event()  # the validation pass began: too late to trace ahead

    def fail(self, what: str, error: BaseException) -> None:
        """Turn the capture off for the rest of the run, with one warning."""
        if self.failed is None:
            self.failed = f"{what}: {type(error).__name__}: {error}"
            warnings.warn(f"monitor: {self.failed}. The monitoring suite is off for the rest of this "
                          "run; training goes on.", RuntimeWarning, stacklevel=2)
        try:
            self.capture.detach()
        except Exception:  # noqa: BLE001 - already off; never reach fit
            pass

    def on_train_begin(self, logs=None):
        if self.failed is not None:
            return
        try:
            self.capture.attach(self.model)
        except Exception as err:  # noqa: BLE001 - the suite must never stop training
            self.fail("cannot attach to the model's validation pass", err)
            return
        self._validating.clear()
        self._ahead = threading.Thread(target=self._trace_ahead, name="capture-trace", daemon=True)
        self._ahead.start()

    def _trace_ahead(self) -> None:
        """Once training has taken its first step, trace what the first validation pass would trace
        on the training thread. Quiet: whatever fails here is traced, and said, by the pass."""
        wait_for_first_step(self.model)
        try:
            with quick_handover():  # the training loop's Python between steps waits less for the GIL
                if not self._validating.is_set():
                    self.capture.trace_state_functions()
                if not self._validating.is_set():
                    self.traced_ahead = trace_validation_ahead(self.model, self.capture.traced_quietly)
        except Exception:  # noqa: BLE001
            self.traced_ahead = False

    def _join_ahead(self) -> None:
        self._validating.set()
        if self._ahead is not None:
            self._ahead.join()
            self._ahead = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_test_begin(self, logs=None):
        if self.failed is not None:
            return
        start = time.perf_counter()
        self._join_ahead()  # a trace still running finishes first (the pass would wait for it anyway)
        try:
            self.capture.reset()
        except Exception as err:  # noqa: BLE001
            self.fail("cannot reset the streamed state", err)
        self.seconds_on_training_thread += time.perf_counter() - start

    def on_test_end(self, logs=None):
        # Under MultiWorkerMirroredStrategy reading sums across workers: every
        # worker reads here, whether or not it writes anything afterwards.
        if self._epoch is None or self.failed is not None:
            return
        start = time.perf_counter()
        try:
            self._state = self.capture.read()
            self._state_epoch = self._epoch
        except Exception as err:  # noqa: BLE001
            self.fail("cannot read the streamed state", err)
        else:
            self._refuse_unreadable_targets()
        self.seconds_on_training_thread += time.perf_counter() - start

    def _refuse_unreadable_targets(self) -> None:
        """Turn the suite off (one warning) for targets the head cannot read: multi-hot rows fed
        to a single-label head, or multi-label rows holding other values than 0 and 1."""
        if self._state.multi_hot_rows:
            self._state = None
            self.fail("cannot monitor this model", ValueError(MULTI_LABEL.format(
                why="the validation targets hold rows with several (or no) labels set")))
        elif self._state.unreadable_target_rows:
            rows = self._state.unreadable_target_rows
            self._state = None
            self.fail("cannot read the targets", ValueError(
                f"{rows} validation target rows of the multi-label head hold other values than 0 and 1 "
                "(multi-hot rows of 0s and 1s expected)"))

    def on_train_end(self, logs=None):
        self._join_ahead()
        try:
            self.capture.detach()
        except Exception as err:  # noqa: BLE001
            self.fail("cannot detach from the model", err)
        self._epoch = None

    def state_for(self, epoch: int) -> EvaluationState | None:
        """The validation state of `epoch`, or None (warned once) if it had no validation pass."""
        if self.failed is not None or self.capture.unreadable is not None:
            return None  # already warned, once
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
