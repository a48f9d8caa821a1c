"""Training alarms: named rules over a run's per-epoch history, each said once when it starts and
once if it ends. Pure numbers in, `Alert`s out; no TensorFlow. They never change training.

```python
alarms = Alarms(class_names=["cat", "dog", "bird"])
for logs in history:                         # Keras' logs of each epoch, in order
    for alert in alarms.step(logs):         # what this epoch starts or ends
        print(alert.message)
evaluate(history, class_names=names)        # every alert of a whole history at once
```

The rules (their thresholds: `monitor.limits.AlarmLimits`, `ALARM_LIMITS` by default):

- `overfitting`: for `patience` epochs the validation loss is more than `overfitting_margin` above
  its lowest while the training loss fell; ends when it is back within that margin.
- `not_learning`: from epoch `warmup_epochs` on, validation accuracy at most `chance_margin` above
  chance (the larger of 1/C and the largest class's share of the validation images).
- `collapse`: from epoch `warmup_epochs` on, one class takes `collapse_share` of the validation
  predictions (and `collapse_excess` more than its share of the images); or a class's recall stays
  at 0 for `patience` epochs while the other classes' mean recall rises. Needs the per-class
  numbers of `EpochStats.from_confusion`; with Keras' logs alone it is not evaluated.
- `diverging`: the training loss rose at each of `diverging_epochs` epochs running, to at least
  `diverging_factor` times what it was; ends at the first epoch it falls.
- `over_confident`: the validation ECE (`val_ece` in the logs, when a calibration capture puts it
  there) rose at each of `patience` epochs, by more than `ece_rise`, while validation accuracy rose
  by at most `ece_accuracy_gain`. Without an ECE it is not evaluated.

An epoch lacking what a rule reads (no validation pass, a non-finite value) neither starts nor
ends that rule. Epochs in messages and in `Alert.epoch` are 1-based, as Keras prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from monitor.limits import ALARM_LIMITS, AlarmLimits
from monitor.names import markdown_text

ALERTS_TAG = "alerts"  # text summary, in blocks of `epochs_per_tag` epochs like the suite's texts
GAP_TAGS = {"loss": "generalisation/loss_gap", "accuracy": "generalisation/accuracy_gap"}
# How Keras names an accuracy metric in the logs, by what `compile(metrics=...)` was given.
ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
                  "binary_accuracy")
ECE_KEYS = ("val_ece", "val_expected_calibration_error")  # the validation ECE, when present


@dataclass(frozen=True)
class Alert:
    """One alarm starting (or, `ended`, stopping) at the end of epoch `epoch` (1-based)."""

    epoch: int
    rule: str
    message: str
    numbers: dict = field(default_factory=dict)
    ended: bool = False

    def as_dict(self) -> dict:
        """As `metrics.json` lists it."""
        return {"epoch": self.epoch, "rule": self.rule, "event": "ended" if self.ended else "started",
                "message": self.message, "numbers": dict(self.numbers)}


def accuracy_key(logs: dict, prefix: str = "") -> str | None:
    """The accuracy key of Keras logs (`prefix="val_"`: the validation one), however it is named:
    `accuracy`, `acc`, `sparse_categorical_accuracy`, ..., or `<output>_accuracy`."""
    for name in ACCURACY_NAMES:
        if prefix + name in logs:
            return prefix + name
    found = sorted(k for k in logs if k.startswith(prefix) and (prefix or not k.startswith("val_"))
                   and k.endswith(("_accuracy", "_acc")) and "top" not in k)
    return found[0] if found else None


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class EpochStats:
    """One epoch as the rules read it: Keras' logs, and per-class shares of the validation pass."""

    logs: dict
    predicted_share: np.ndarray | None = None  # (C,) share of the validation predictions per class
    true_share: np.ndarray | None = None  # (C,) share of the validation images per class
    recall: np.ndarray | None = None  # (C,) NaN for a class without validation images
    ece: float | None = None  # the validation ECE; None: `val_ece` in the logs, if there
    matrix_accuracy: float | None = None  # the confusion matrix's accuracy, when the logs have none

    @classmethod
    def from_confusion(cls, logs: dict | None, confusion=None, ece: float | None = None) -> EpochStats:
        """From the logs and a (C, C) validation confusion matrix (rows: true, columns: predicted)."""
        logs = dict(logs or {})
        cm = None if confusion is None else np.asarray(confusion, dtype=np.float64)
        if cm is None or cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.sum() <= 0:
            return cls(logs, ece=ece)
        support = cm.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, np.diag(cm) / support, np.nan)
        total = cm.sum()
        return cls(logs, cm.sum(0) / total, support / total, recall, ece, float(np.trace(cm) / total))

    def value(self, key: str) -> float | None:
        """A finite number of the logs, or None."""
        return _finite(self.logs.get(key))

    @property
    def accuracy(self) -> float | None:
        key = accuracy_key(self.logs)
        return None if key is None else self.value(key)

    @property
    def val_accuracy(self) -> float | None:
        key = accuracy_key(self.logs, "val_")
        return self.matrix_accuracy if key is None else self.value(key)

    @property
    def validation_ece(self) -> float | None:
        if self.ece is not None:
            return _finite(self.ece)
        return next((v for k in ECE_KEYS if (v := self.value(k)) is not None), None)


def as_stats(entry) -> EpochStats:
    return entry if isinstance(entry, EpochStats) else EpochStats(dict(entry or {}))


def generalisation_gaps(logs: dict) -> dict[str, float]:
    """Validation minus training loss and accuracy, as `GAP_TAGS` scalars (those the logs allow)."""
    stats, out = as_stats(logs), {}
    pairs = {"loss": (stats.value("val_loss"), stats.value("loss")),
             "accuracy": (stats.val_accuracy, stats.accuracy)}
    for kind, (validation, training) in pairs.items():
        if validation is not None and training is not None:
            out[GAP_TAGS[kind]] = validation - training
    return out


def alerts_markdown(alerts: list[Alert]) -> str:
    """The `alerts` text of one epoch: one line per alert."""
    return "\n".join(f"- epoch {a.epoch}, **{a.rule}** {'ended' if a.ended else 'started'}: "
                     f"{markdown_text(a.message)}"
                     for a in alerts)


def console_line(alert: Alert, epochs: int | None = None) -> str:
    """The one line the console shows, e.g. `Alarm, epoch 14/31: overfitting since epoch 11: ...`."""
    return f"Alarm, epoch {alert.epoch}{f'/{epochs}' if epochs else ''}: {alert.message}"


def _rising(values: list[float]) -> bool:
    return all(b > a for a, b in pairwise(values))


def _n(x: float) -> str:
    """A loss or an accuracy as the messages show it: 0.92, 1.31, 3.9e+05."""
    return f"{x:.2f}" if abs(x) < 100 else f"{x:.3g}"


@dataclass
class Context:
    """What the rules know besides the history: the limits, the classes, the first epoch's number."""

    limits: AlarmLimits = ALARM_LIMITS
    class_names: list[str] | None = None
    num_classes: int | None = None
    offset: int = 0  # epoch number (1-based) of history[0], minus 1

    def epoch(self, history: list, i: int) -> int:
        """The 1-based epoch number of `history[i]` (negative `i` from the end)."""
        return (i % len(history)) + 1 + self.offset

    def name(self, k: int) -> str:
        names = self.class_names
        return repr(names[k]) if names and k < len(names) else f"#{k}"

    def chance(self, stats: EpochStats) -> tuple[float, str] | None:
        """(chance accuracy, how it was found), None without a class count."""
        count = len(stats.true_share) if stats.true_share is not None else self.num_classes
        if not count:
            return None
        if stats.true_share is not None and stats.true_share.max() > 1 / count:
            k = int(stats.true_share.argmax())
            return float(stats.true_share[k]), f"the share of the largest class, {self.name(k)}"
        return 1 / count, f"1 of {count} classes"


Finding = tuple[str, dict]  # (message, numbers)


class Overfitting:
    """The validation loss above its lowest, by more than a margin, for `patience` epochs, while
    the training loss fell."""

    name = "overfitting"

    def starts(self, h: list[EpochStats], ctx: Context) -> Finding | None:
        lim, p = ctx.limits, ctx.limits.patience
        val = [e.value("val_loss") for e in h]
        if len(h) <= p or any(v is None for v in val[-p:]):
            return None
        best = min((i for i, v in enumerate(val) if v is not None), key=lambda i: val[i])
        low, now = val[best], val[-1]
        loss_then, loss_now, loss_before = h[best].value("loss"), h[-1].value("loss"), h[-1 - p].value("loss")
        if (any(v <= low + lim.overfitting_margin * abs(low) for v in val[-p:])
                or None in (loss_then, loss_now, loss_before)
                or not loss_now < min(loss_then, loss_before)):
            return None
        since = ctx.epoch(h, best)
        rise = (now - low) / abs(low) if low else math.inf
        message = (f"overfitting since epoch {since}: validation loss {_n(low)} → {_n(now)} "
                   f"(+{rise:.0%}) while training loss fell {_n(loss_then)} → {_n(loss_now)}; "
                   f"the weights of epoch {since} had the lowest validation loss")
        return message, {"since_epoch": since, "best_epoch": since, "val_loss_min": low, "val_loss": now,
                         "val_loss_rise": rise, "loss_at_best": loss_then, "loss": loss_now}

    def ends(self, h: list[EpochStats], ctx: Context, start: Alert) -> Finding | None:
        val = [e.value("val_loss") for e in h]
        if val[-1] is None:
            return None
        best = min((i for i, v in enumerate(val) if v is not None), key=lambda i: val[i])
        margin = ctx.limits.overfitting_margin
        if val[-1] > val[best] + margin * abs(val[best]):
            return None
        return (f"overfitting ended: validation loss {_n(val[-1])} is back within {margin:.0%} of its "
                f"lowest, {_n(val[best])} (epoch {ctx.epoch(h, best)})",
                {"val_loss": val[-1], "val_loss_min": val[best], "best_epoch": ctx.epoch(h, best)})


class NotLearning:
    """Validation accuracy within a margin of chance after `warmup_epochs` epochs."""

    name = "not_learning"

    def _judge(self, h: list[EpochStats], ctx: Context):
        """(at chance?, accuracy, chance, how chance was found), None when it cannot tell."""
        accuracy, chance = h[-1].val_accuracy, ctx.chance(h[-1])
        if ctx.epoch(h, -1) < ctx.limits.warmup_epochs or accuracy is None or chance is None:
            return None
        return accuracy <= chance[0] + ctx.limits.chance_margin, accuracy, *chance

    def starts(self, h: list[EpochStats], ctx: Context) -> Finding | None:
        judged = self._judge(h, ctx)
        if judged is None or not judged[0]:
            return None
        _, accuracy, chance, how = judged
        epochs = ctx.epoch(h, -1)
        return (f"not learning: validation accuracy {accuracy:.2f} after {epochs} epochs, no more than "
                f"{ctx.limits.chance_margin:.2f} above chance ({chance:.2f}: {how})",
                {"val_accuracy": accuracy, "chance": chance, "epochs": epochs})

    def ends(self, h: list[EpochStats], ctx: Context, start: Alert) -> Finding | None:
        judged = self._judge(h, ctx)
        if judged is None or judged[0]:
            return None
        _, accuracy, chance, _ = judged
        return (f"not learning ended: validation accuracy {accuracy:.2f} is more than "
                f"{ctx.limits.chance_margin:.2f} above chance ({chance:.2f})",
                {"val_accuracy": accuracy, "chance": chance})


class Collapse:
    """One class takes most of the validation predictions, or a class's recall stays at 0 for
    `patience` epochs while the other classes' mean recall rises."""

    name = "collapse"

    def starts(self, h: list[EpochStats], ctx: Context) -> Finding | None:
        if ctx.epoch(h, -1) < ctx.limits.warmup_epochs:
            return None
        return self._dominant(h[-1], ctx) or self._silent(h, ctx)

    def _dominant(self, e: EpochStats, ctx: Context) -> Finding | None:
        if e.predicted_share is None:
            return None
        k = int(e.predicted_share.argmax())
        share = float(e.predicted_share[k])
        true = float(e.true_share[k]) if e.true_share is not None else 1 / len(e.predicted_share)
        if share < ctx.limits.collapse_share or share - true < ctx.limits.collapse_excess:
            return None
        return (f"collapse: class {ctx.name(k)} takes {share:.0%} of the validation predictions "
                f"(it is {true:.0%} of the validation images)",
                {"kind": "predictions", "class_index": k, "predicted_share": share, "true_share": true})

    def _silent(self, h: list[EpochStats], ctx: Context) -> Finding | None:
        p = ctx.limits.patience
        window = h[-p:]
        if len(h) < p or any(e.recall is None or len(e.recall) != len(window[-1].recall)
                             for e in reversed(window)):
            return None
        recalls = np.stack([e.recall for e in window])  # (p, C)
        silent = np.flatnonzero((recalls == 0).all(0))
        others = np.setdiff1d(np.arange(recalls.shape[1]), silent)
        both = others[~np.isnan(recalls[[0, -1]][:, others]).any(0)]  # others with images both times
        if not len(silent) or not len(both):
            return None
        before, now = (float(r[both].mean()) for r in (recalls[0], recalls[-1]))
        if not now - before > ctx.limits.collapse_recall_rise:
            return None
        streak = p
        while streak < len(h) and _all_zero(h[-streak - 1].recall, silent):
            streak += 1
        since, names = ctx.epoch(h, -streak), ", ".join(ctx.name(int(k)) for k in silent)
        what = f"class {names} has" if len(silent) == 1 else f"classes {names} have"
        return (f"collapse since epoch {since}: {what} had recall 0 for {streak} epochs while the other "
                f"classes' mean recall rose {before:.2f} → {now:.2f}",
                {"kind": "recall", "class_indices": [int(k) for k in silent], "since_epoch": since,
                 "others_recall_from": before, "others_recall": now})

    def ends(self, h: list[EpochStats], ctx: Context, start: Alert) -> Finding | None:
        e = h[-1]
        if start.numbers.get("kind") == "predictions":
            k = start.numbers["class_index"]
            if e.predicted_share is None or k >= len(e.predicted_share) or self._dominant(e, ctx):
                return None
            share = float(e.predicted_share[k])
            return (f"collapse ended: class {ctx.name(k)} takes {share:.0%} of the validation predictions",
                    {"kind": "predictions", "class_index": k, "predicted_share": share})
        silent = start.numbers.get("class_indices", [])
        if e.recall is None or max(silent, default=0) >= len(e.recall) or (e.recall[silent] == 0).any():
            return None
        names = ", ".join(f"{ctx.name(k)} {e.recall[k]:.2f}" for k in silent)
        return (f"collapse ended: recall of {names}", {"kind": "recall", "class_indices": silent,
                                                       "recall": [float(e.recall[k]) for k in silent]})


def _all_zero(recall: np.ndarray | None, classes: np.ndarray) -> bool:
    return recall is not None and len(recall) > classes.max() and bool((recall[classes] == 0).all())


class Diverging:
    """The training loss rose at each of `diverging_epochs` epochs, to `diverging_factor` times
    what it was."""

    name = "diverging"

    def starts(self, h: list[EpochStats], ctx: Context) -> Finding | None:
        d, factor = ctx.limits.diverging_epochs, ctx.limits.diverging_factor
        losses = [e.value("loss") for e in h[-d - 1:]]
        if len(h) <= d or None in losses or losses[0] <= 0:
            return None
        if not _rising(losses) or losses[-1] < factor * losses[0]:
            return None
        since, ratio = ctx.epoch(h, -d), losses[-1] / losses[0]
        return (f"diverging since epoch {since}: training loss rose {d} epochs running, "
                f"{_n(losses[0])} → {_n(losses[-1])} (×{ratio:.1f}); lower the learning rate "
                "before it becomes NaN",
                {"since_epoch": since, "loss_from": losses[0], "loss": losses[-1], "ratio": ratio})

    def ends(self, h: list[EpochStats], ctx: Context, start: Alert) -> Finding | None:
        losses = [e.value("loss") for e in h[-2:]]
        if len(h) < 2 or None in losses or not losses[1] < losses[0]:
            return None
        return (f"diverging ended: training loss fell {_n(losses[0])} → {_n(losses[1])}",
                {"loss_from": losses[0], "loss": losses[1]})


class OverConfident:
    """The validation ECE rose at each of `patience` epochs while validation accuracy did not."""

    name = "over_confident"

    def starts(self, h: list[EpochStats], ctx: Context) -> Finding | None:
        lim, p = ctx.limits, ctx.limits.patience
        ece = [e.validation_ece for e in h[-p - 1:]]
        accuracy = [h[i].val_accuracy for i in (-p - 1, -1)] if len(h) > p else [None]
        if len(h) <= p or None in ece or None in accuracy:
            return None
        if (not _rising(ece) or not ece[-1] - ece[0] > lim.ece_rise
                or accuracy[1] - accuracy[0] > lim.ece_accuracy_gain):
            return None
        since = ctx.epoch(h, -p)
        return (f"over-confident since epoch {since}: validation ECE rose {ece[0]:.3f} → {ece[-1]:.3f} "
                f"over {p} epochs while validation accuracy did not ({accuracy[0]:.2f} → "
                f"{accuracy[1]:.2f})",
                {"since_epoch": since, "ece_from": ece[0], "ece": ece[-1], "val_accuracy_from": accuracy[0],
                 "val_accuracy": accuracy[1]})

    def ends(self, h: list[EpochStats], ctx: Context, start: Alert) -> Finding | None:
        ece, low = h[-1].validation_ece, start.numbers["ece_from"]
        if ece is None or ece > low + ctx.limits.ece_rise:
            return None
        return (f"over-confident ended: validation ECE {ece:.3f}, back within {ctx.limits.ece_rise:.3f} "
                f"of {low:.3f} where its rise began", {"ece": ece, "ece_from": low})


RULES = (Overfitting(), NotLearning(), Collapse(), Diverging(), OverConfident())


class Alarms:
    """The rules' state over one run: feed it each epoch with `step`, read `alerts`."""

    def __init__(self, class_names=None, num_classes: int | None = None,
                 limits: AlarmLimits = ALARM_LIMITS, rules=RULES):
        names = [str(c) for c in class_names] if class_names is not None else None
        self.context = Context(limits, names, num_classes or (len(names) if names else None))
        self.rules = tuple(rules)
        self.history: list[EpochStats] = []
        self.active: dict[str, Alert] = {}  # rule name -> the alert that started it
        self.alerts: list[Alert] = []

    def step(self, entry, epoch: int | None = None) -> list[Alert]:
        """The alerts the next epoch starts or ends; `entry`: its Keras logs or `EpochStats`;
        `epoch`: its 1-based number (default: one after the last; the first one sets the count)."""
        if not self.history and epoch is not None:
            self.context.offset = epoch - 1
        self.history.append(as_stats(entry))
        new = []
        for rule in self.rules:
            start = self.active.get(rule.name)
            found = (rule.starts(self.history, self.context) if start is None
                     else rule.ends(self.history, self.context, start))
            if found is None:
                continue
            alert = Alert(self.context.epoch(self.history, -1), rule.name, found[0], found[1],
                          ended=start is not None)
            if start is None:
                self.active[rule.name] = alert
            else:
                del self.active[rule.name]
            new.append(alert)
        self.alerts += new
        return new


def evaluate(history, class_names=None, num_classes: int | None = None,
             limits: AlarmLimits = ALARM_LIMITS) -> list[Alert]:
    """Every alert of a whole history (a list of per-epoch Keras logs or `EpochStats`, or Keras'
    `History.history` dict of lists), in the order they were said."""
    if isinstance(history, dict):
        length = max((len(v) for v in history.values()), default=0)
        history = [{k: v[i] for k, v in history.items() if i < len(v)} for i in range(length)]
    alarms = Alarms(class_names, num_classes, limits)
    for entry in history:
        alarms.step(entry)
    return alarms.alerts
