"""AlarmsCallback: the training alarms (`monitor.alarms`) said as they start and end."""

from __future__ import annotations

import sys
import time
import warnings

import keras

from callbacks.validation_capture import ValidationCaptureCallback
from monitor import summaries
from monitor.alarms import ALERTS_TAG, Alarms, EpochStats, alerts_markdown, console_line, generalisation_gaps
from monitor.calibration import reliability
from monitor.dashboard import summary as dashboard_summary
from monitor.distribution import model_is_chief
from monitor.limits import ALARM_LIMITS, AlarmLimits
from monitor.names import check_class_names
from monitor.runfiles import SUITE_DIR
from monitor.settings import SuiteOptions, check_option
from monitor.tags import block_tag
from monitor.writers import SummaryWriters

DEFAULTS = SuiteOptions()


class AlarmsCallback(keras.callbacks.Callback):
    """Asks the alarm rules at every epoch end and says what starts or ends, once.

    Each new alert: one console line (`Alarm, epoch 14/31: overfitting since epoch 11: ...`,
    printed when the next epoch begins or `fit` ends, so it never cuts Keras' progress bar) and
    a line of the `alerts/<block>` text summary at that epoch's step, and the epoch's alerts as
    JSON in the dashboard's `training_monitor/alerts/validation/<block>` (markers on its epoch
    slider), at the same step. Every epoch it also writes the scalars `generalisation/loss_gap`
    and `generalisation/accuracy_gap` (validation minus training). `alerts` lists every alert so
    far, as `metrics.json` records them. Per-class numbers (for `collapse`) come from `source`'s
    validation confusion matrix when it has one; once `source` has turned the suite off (it
    warned why), the alarms are silent too.
    Alarms never change training; a failure in here is warned about once and turns the alarms
    off, never reaching `fit`. Only the chief worker prints and writes.

    ```python
    capture = ValidationCaptureCallback(num_classes=3)
    alarms = AlarmsCallback(capture, SummaryWriters("logs/run1"), ["cat", "dog", "bird"])
    model.fit(x, y, validation_split=0.3, callbacks=[capture, alarms])
    alarms.alerts   # [{"epoch": 4, "rule": "not_learning", "event": "started", ...}]
    ```
    """

    def __init__(self, source: ValidationCaptureCallback | None, writers: SummaryWriters, class_names,
                 epochs_per_tag: int = DEFAULTS.epochs_per_tag, limits: AlarmLimits = ALARM_LIMITS,
                 out=None):
        super().__init__()
        check_option("epochs_per_tag", epochs_per_tag)
        self.source = source
        self.writers = writers
        names = None if class_names is None else check_class_names(class_names)  # None: classes by number
        self.alarms = Alarms(names, limits=limits)
        self.epochs_per_tag = epochs_per_tag
        self.out = out  # None: sys.stdout when printing
        self.chief = True
        self.failed: str | None = None
        self.seconds_on_training_thread = 0.0
        self._unsaid: list = []

    @property
    def alerts(self) -> list[dict]:
        """Every alert so far (a resumed run's earlier ones included), oldest first."""
        return [a.as_dict() for a in self.alarms.alerts]

    def replay(self, epochs) -> None:
        """Feed the epochs a resumed run already has (Keras logs or `EpochStats`, from epoch 1):
        their alerts were said then; they are kept in `alerts`, not said again."""
        for entry in epochs:
            self.alarms.step(entry)

    def fail(self, what: str, error: BaseException) -> None:
        """Turn the alarms off for the rest of the run, with one warning."""
        if self.failed is None:
            self.failed = f"{what}: {type(error).__name__}: {error}"
            warnings.warn(f"monitor: {self.failed}. The alarms are off for the rest of this run; training "
                          "goes on.", RuntimeWarning, stacklevel=2)

    def on_train_begin(self, logs=None):
        try:
            self.chief = model_is_chief(self.model)
        except Exception as err:  # noqa: BLE001 - never into fit
            self.chief = False
            self.fail("cannot tell whether this worker is the chief", err)

    def on_epoch_begin(self, epoch, logs=None):
        self._say()

    def on_epoch_end(self, epoch, logs=None):
        if self.failed is not None:
            return
        start = time.perf_counter()
        try:
            self._epoch_end(epoch, dict(logs or {}))
        except Exception as err:  # noqa: BLE001 - the alarms must never stop training
            self.fail(f"alarms at epoch {epoch + 1}", err)
        self.seconds_on_training_thread += time.perf_counter() - start

    def on_train_end(self, logs=None):
        self._say()
        if self.chief:
            self.writers.flush()

    def _epoch_end(self, epoch: int, logs: dict) -> None:
        if self.source is not None and (self.source.failed is not None
                                        or self.source.capture.unreadable is not None):
            return  # the suite is off for the run (the capture said why); its alarms with it
        state = self.source.state_for(epoch) if self.source is not None else None
        ece = None if state is None or state.calibration is None else reliability(**state.calibration)["ece"]
        stats = EpochStats.from_confusion(logs, None if state is None else state.confusion, ece=ece)
        new = self.alarms.step(stats, epoch=epoch + 1)
        if not self.chief:
            return
        self._unsaid += new
        gaps = generalisation_gaps(logs)
        tag = block_tag(ALERTS_TAG, epoch, self.epochs_per_tag)
        text = alerts_markdown(new)
        records = [a.as_dict() for a in new]

        def work() -> None:
            summaries.scalars(gaps, epoch)
            if text:
                summaries.text(tag, text, epoch)
                dashboard_summary.alerts(records, epoch, epochs_per_tag=self.epochs_per_tag)

        if gaps or text:
            self.writers.submit(SUITE_DIR, work, what="writing the alarms")

    def _say(self) -> None:
        """Print the alerts not yet printed, one line each."""
        unsaid, self._unsaid = self._unsaid, []
        try:
            for alert in unsaid:
                print(console_line(alert, (self.params or {}).get("epochs")), file=self.out or sys.stdout,
                      flush=True)
        except Exception as err:  # noqa: BLE001 - a closed stdout must not stop training
            self.fail("printing an alarm", err)
