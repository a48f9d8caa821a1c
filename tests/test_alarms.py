"""The training alarms: each rule on constructed histories (fires at the right epoch with the right
numbers, stays quiet when it should, says its end once), tiny real fits (shuffled labels: not
learning; a learning rate past stability: diverging), the suite's TensorBoard output, and
metrics.json / report.html through a real run."""

from __future__ import annotations

import dataclasses
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import AlarmsCallback, close_suite, monitoring_callbacks, suite_alarms
from monitor.alarms import Alarms, EpochStats, accuracy_key, evaluate, generalisation_gaps
from monitor.data import load_splits
from monitor.limits import ALARM_LIMITS, AlarmLimits
from monitor.report import build_report
from monitor.settings import RunConfig
from monitor.writers import SummaryWriters
from runner import training
from tests.helpers import NAMES, accumulator, read_tags, tiny_data, tiny_model

ISSUE_MESSAGE = ("overfitting since epoch 11: validation loss 0.92 → 1.31 (+42%) while training loss fell "
                 "0.71 → 0.35; the weights of epoch 11 had the lowest validation loss")


def logs(loss=None, val_loss=None, accuracy=None, val_accuracy=None, **extra) -> list[dict]:
    """Per-epoch Keras logs from per-key lists."""
    columns = {"loss": loss, "val_loss": val_loss, "accuracy": accuracy, "val_accuracy": val_accuracy,
               **extra}
    columns = {k: v for k, v in columns.items() if v is not None}
    length = max(len(v) for v in columns.values())
    return [{k: v[i] for k, v in columns.items()} for i in range(length)]


def said(alerts, rule=None) -> list[tuple[int, str]]:
    return [(a.epoch, "ended" if a.ended else "started") for a in alerts if rule in (None, a.rule)]


# Overfitting: the validation loss bottoms out at epoch 11, then rises for 3 epochs past the margin.
VAL = [2.0, 1.6, 1.3, 1.1, 1.0, 0.98, 0.96, 0.95, 0.94, 0.93, 0.92, 0.99, 1.10, 1.31]
TRAIN = [2.1, 1.7, 1.4, 1.2, 1.1, 1.0, 0.9, 0.85, 0.8, 0.75, 0.71, 0.6, 0.5, 0.35]


def test_overfitting_fires_at_the_third_epoch_above_the_minimum_with_the_issues_message():
    alerts = evaluate(logs(TRAIN, VAL), num_classes=10)
    assert said(alerts) == [(14, "started")]
    (alert,) = alerts
    assert alert.rule == "overfitting" and alert.message == ISSUE_MESSAGE
    assert alert.numbers["best_epoch"] == 11 and alert.numbers["val_loss_min"] == 0.92
    assert alert.numbers["val_loss"] == 1.31 and alert.numbers["loss"] == 0.35
    assert alert.numbers["val_loss_rise"] == pytest.approx(1.31 / 0.92 - 1)


def test_overfitting_stays_quiet_when_training_loss_rises_too_or_validation_is_noise():
    rising_train = TRAIN[:11] + [0.8, 0.9, 1.0]
    assert evaluate(logs(rising_train, VAL), num_classes=10) == []
    noisy = [1.0, 0.9, 0.8, 0.7, 0.72, 0.69, 0.715, 0.72, 0.71, 0.72, 0.7, 0.715]  # within 5% of 0.69
    falling = list(np.linspace(1.2, 0.3, len(noisy)))
    assert evaluate(logs(falling, noisy), num_classes=10) == []
    assert evaluate(logs(TRAIN, VAL[:13] + [0.95]), num_classes=10) == []  # epoch 14 back within 5%


def test_overfitting_says_its_end_once():
    val = VAL + [1.2, 0.95, 0.94, 0.96, 0.93]  # back within 5% of 0.92 at epoch 16
    train = TRAIN + [0.3, 0.28, 0.27, 0.26, 0.25]
    alerts = evaluate(logs(train, val), num_classes=10)
    assert said(alerts) == [(14, "started"), (16, "ended")]
    assert alerts[1].message == ("overfitting ended: validation loss 0.95 is back within 5% of its lowest, "
                                 "0.92 (epoch 11)")


def test_not_learning_fires_after_the_warmup_and_ends_once_above_chance():
    val_accuracy = [0.10, 0.11, 0.12, 0.13, 0.40, 0.45, 0.50]
    alerts = evaluate(logs(val_accuracy=val_accuracy, val_loss=[2.3] * 7), num_classes=10)
    assert said(alerts) == [(3, "started"), (5, "ended")]
    assert alerts[0].message == ("not learning: validation accuracy 0.12 after 3 epochs, no more than "
                                 "0.05 above chance (0.10: 1 of 10 classes)")
    assert alerts[0].numbers == {"val_accuracy": 0.12, "chance": 0.1, "epochs": 3}
    learning = [0.10, 0.12, 0.30, 0.35]  # at chance only before the warm-up ends
    assert evaluate(logs(val_accuracy=learning), num_classes=10) == []


def test_not_learning_takes_the_majority_class_as_chance():
    # 70 of 100 validation images are class 0; the model predicts class 0 for 92 of them
    cm = np.array([[68, 2], [24, 6]])
    history = [EpochStats.from_confusion({"val_accuracy": 0.74}, cm) for _ in range(3)]
    (alert,) = evaluate(history, class_names=["cat", "dog"])
    assert alert.numbers["chance"] == pytest.approx(0.7) and alert.epoch == 3
    assert "the share of the largest class, 'cat'" in alert.message
    balanced = [EpochStats.from_confusion({"val_accuracy": 0.72}, np.array([[40, 10], [18, 32]]))] * 3
    assert evaluate(balanced, class_names=["cat", "dog"]) == []  # 0.72 > 0.5 + 0.05


def _confusion(predicted_column_share: float, n: int = 30) -> np.ndarray:
    """3 classes of n images; a share of every class's images is predicted as class 0."""
    to_zero = round(n * predicted_column_share)
    return np.array([[n, 0, 0], [to_zero, n - to_zero, 0], [to_zero, 0, n - to_zero]])


def test_collapse_when_one_class_takes_most_predictions():
    history = [EpochStats.from_confusion({}, _confusion(s)) for s in (0.8, 0.8, 0.7, 0.7, 0.1)]
    alerts = evaluate(history, class_names=NAMES)
    assert said(alerts) == [(3, "started"), (5, "ended")]  # epochs 1 and 2 are the warm-up
    share = (30 + 2 * 21) / 90
    assert alerts[0].message == (f"collapse: class 'cat' takes {share:.0%} of the validation predictions "
                                 "(it is 33% of the validation images)")
    assert alerts[0].numbers["predicted_share"] == pytest.approx(share)
    assert evaluate([EpochStats.from_confusion({}, _confusion(0.3))] * 5, class_names=NAMES) == []


def _recall_confusion(recalls) -> np.ndarray:
    """3 classes of 100 images with these recalls; misses go to the next class."""
    cm = np.zeros((3, 3), int)
    for k, r in enumerate(recalls):
        cm[k, k] = round(100 * r)
        cm[k, (k + 1) % 3] = 100 - cm[k, k]
    return cm


def test_collapse_when_a_class_recall_stays_zero_while_the_others_rise():
    recalls = [(0.5, 0.4, 0.0), (0.6, 0.5, 0.0), (0.7, 0.6, 0.0), (0.8, 0.7, 0.0), (0.8, 0.7, 0.2)]
    history = [EpochStats.from_confusion({}, _recall_confusion(r)) for r in recalls]
    alerts = [a for a in evaluate(history, class_names=NAMES) if a.rule == "collapse"]
    assert said(alerts) == [(3, "started"), (5, "ended")]
    assert alerts[0].message == ("collapse since epoch 1: class 'bird' has had recall 0 for 3 epochs while "
                                 "the other classes' mean recall rose 0.45 → 0.65")
    assert alerts[0].numbers["class_indices"] == [2]
    assert alerts[1].message == "collapse ended: recall of 'bird' 0.20"
    flat = [(0.6, 0.5, 0.0)] * 5  # recall 0, but nothing else rises: not a collapse
    assert said(evaluate([EpochStats.from_confusion({}, _recall_confusion(r)) for r in flat],
                         class_names=NAMES), "collapse") == []


def test_collapse_reads_a_class_without_validation_images_as_no_evidence(recwarn):
    flat = [EpochStats({}, recall=np.array([0.5, np.nan, 0.0]))] * 5  # class 1: no images, recall NaN
    assert evaluate(flat, class_names=NAMES) == []
    rising = [EpochStats({}, recall=np.array([r, np.nan, 0.0])) for r in (0.3, 0.4, 0.5)]
    assert said(evaluate(rising, class_names=NAMES)) == [(3, "started")]
    assert not recwarn.list


def test_without_an_accuracy_in_the_logs_the_matrix_gives_it():
    history = [EpochStats.from_confusion({"val_loss": 1.1}, np.full((3, 3), 10))] * 3
    (alert,) = evaluate(history, class_names=NAMES)
    assert alert.rule == "not_learning" and alert.numbers["val_accuracy"] == pytest.approx(1 / 3)


def test_a_resumed_run_replays_its_epochs_from_its_files(tmp_path):
    """runner.training.past_epochs: the history and the confusion JSONL give the alarms what the
    uninterrupted run had, so the resumed run's alerts are the same and none is said twice."""
    from monitor.runfiles import matrices

    recalls = [(0.5, 0.4, 0.0), (0.6, 0.5, 0.0), (0.7, 0.6, 0.0), (0.8, 0.7, 0.0), (0.8, 0.7, 0.2)]
    history = {"loss": [1.0, 0.9, 0.8, 0.7, 0.6], "val_loss": [1.0, 0.95, 0.9, 0.85, 0.8],
               "accuracy": [0.5] * 5, "val_accuracy": [0.4, 0.5, 0.6, 0.7, 0.6]}
    for epoch, r in enumerate(recalls[:3]):
        matrices.append(str(tmp_path), epoch, NAMES, _recall_confusion(r))
    alarms = AlarmsCallback(None, SummaryWriters(str(tmp_path)), NAMES, out=io.StringIO())
    alarms.replay(training.past_epochs(str(tmp_path), {k: v[:3] for k, v in history.items()}))
    assert [(a["epoch"], a["rule"]) for a in alarms.alerts] == [(3, "collapse")] and not alarms._unsaid
    later = [alarms.alarms.step(EpochStats.from_confusion({k: v[i] for k, v in history.items()},
                                                          _recall_confusion(recalls[i])), epoch=i + 1)
             for i in (3, 4)]
    whole = evaluate([EpochStats.from_confusion({k: v[i] for k, v in history.items()},
                                                _recall_confusion(r)) for i, r in enumerate(recalls)],
                     class_names=NAMES)
    assert alarms.alarms.alerts == whole and later == [[], [whole[-1]]]


def test_collapse_needs_the_per_class_numbers():
    assert evaluate(logs(val_accuracy=[0.9] * 6, loss=[1.0] * 6), class_names=NAMES) == []


def test_diverging_fires_after_three_rises_and_ends_when_the_loss_falls():
    alerts = evaluate(logs(loss=[1.0, 0.8, 0.9, 1.2, 2.0, 3.5, 1.5, 1.6]), num_classes=3)
    assert said(alerts) == [(5, "started"), (7, "ended")]
    assert alerts[0].message == ("diverging since epoch 3: training loss rose 3 epochs running, 0.80 → 2.00 "
                                 "(×2.5); lower the learning rate before it becomes NaN")
    assert alerts[1].message == "diverging ended: training loss fell 3.50 → 1.50"
    slow = [1.0, 0.8, 0.85, 0.9, 0.95, 1.0]  # rising, but by less than 1.5 times
    assert evaluate(logs(loss=slow), num_classes=3) == []
    assert evaluate(logs(loss=[1.0, 2.0, 1.5, 3.0, 2.5, 5.0]), num_classes=3) == []  # not running


def test_over_confident_fires_on_rising_ece_at_flat_accuracy():
    ece = [0.02, 0.03, 0.05, 0.08, 0.09, 0.025]
    alerts = evaluate(logs(val_accuracy=[0.7, 0.71, 0.70, 0.70, 0.71, 0.72], val_ece=ece), num_classes=10)
    assert said(alerts) == [(4, "started"), (6, "ended")]
    assert alerts[0].message == ("over-confident since epoch 2: validation ECE rose 0.020 → 0.080 over 3 "
                                 "epochs while validation accuracy did not (0.70 → 0.70)")
    improving = logs(val_accuracy=[0.5, 0.6, 0.7, 0.8], val_ece=ece[:4])
    assert evaluate(improving, num_classes=10) == []
    assert evaluate(logs(val_accuracy=[0.7] * 6), num_classes=10) == []  # no ECE: not evaluated


def test_an_epoch_without_validation_neither_starts_nor_ends_a_rule():
    history = logs(TRAIN, VAL) + [{"loss": 0.3}, {"loss": 0.29}]  # validation_freq > 1, say
    assert said(evaluate(history, num_classes=10)) == [(14, "started")]


def test_the_accuracy_is_found_whatever_keras_named_it():
    assert accuracy_key({"acc": 1, "val_acc": 1}, "val_") == "val_acc"
    assert accuracy_key({"sparse_categorical_accuracy": 1}) == "sparse_categorical_accuracy"
    assert accuracy_key({"top_k_categorical_accuracy": 1, "out_accuracy": 1}) == "out_accuracy"
    assert accuracy_key({"val_binary_accuracy": 1}) is None
    alerts = evaluate([{"val_categorical_accuracy": 0.1}] * 3, num_classes=10)
    assert said(alerts, "not_learning") == [(3, "started")]
    assert generalisation_gaps({"loss": 0.5, "val_loss": 0.8, "acc": 0.9, "val_acc": 0.7}) == pytest.approx(
        {"generalisation/loss_gap": 0.3, "generalisation/accuracy_gap": -0.2})


def test_replaying_part_of_a_history_then_going_on_gives_the_same_alerts():
    history = logs(TRAIN + [0.3, 0.3], VAL + [1.3, 0.95])
    whole = evaluate(history, num_classes=10)
    alarms = Alarms(num_classes=10)
    for entry in history[:12]:
        alarms.step(entry)
    later = [a for entry in history[12:] for a in alarms.step(entry)]
    assert later == [a for a in whole if a.epoch > 12] and alarms.alerts == whole
    offset = Alarms(num_classes=10)  # a fit from initial_epoch=20 numbers its epochs from 21
    new = [a for i, entry in enumerate(history) for a in offset.step(entry, epoch=21 + i if i == 0 else None)]
    assert [a.epoch for a in new] == [a.epoch + 20 for a in whole]
    assert "since epoch 31" in new[0].message


def test_every_threshold_is_named_in_one_place():
    assert dataclasses.asdict(ALARM_LIMITS) == dataclasses.asdict(AlarmLimits())
    stricter = AlarmLimits(patience=2)
    assert said(evaluate(logs(TRAIN, VAL), num_classes=10, limits=stricter)) == [(13, "started")]


# Tiny real fits.

def shuffled_data(n=600, seed=0):
    """The tiny data set with its labels shuffled: nothing to learn."""
    x, y = tiny_data(n, seed=seed)
    return x, np.random.default_rng(seed + 10).permutation(y)


class RaisingRule:
    name = "broken"

    def starts(self, h, ctx):
        raise ZeroDivisionError("a rule's bug")


def test_shuffled_labels_are_not_learning(tmp_path, capsys):
    x, y = shuffled_data()
    alarms = AlarmsCallback(None, SummaryWriters(str(tmp_path)), NAMES)
    tiny_model().fit(x, y, validation_split=0.5, epochs=4, batch_size=32, callbacks=[alarms], verbose=0)
    assert [(a["epoch"], a["rule"], a["event"]) for a in alarms.alerts] == [(3, "not_learning", "started")]
    assert capsys.readouterr().out.count("Alarm, epoch 3/4: not learning: validation accuracy") == 1


def test_a_learning_rate_past_stability_is_diverging_before_any_nan(tmp_path):
    """A linear head under MSE with plain SGD: past lr 2/λmax every step multiplies the error, so
    the loss grows about 17× an epoch and stays finite for these 5 epochs (seeded, deterministic)."""
    x, y = tiny_data(300)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["categorical_accuracy"])
    alarms = AlarmsCallback(None, SummaryWriters(str(tmp_path)), NAMES, out=io.StringIO())
    history = model.fit(x, keras.utils.to_categorical(y, 3), validation_split=0.3, epochs=5, batch_size=32,
                        callbacks=[alarms], verbose=0).history
    assert all(np.isfinite(history["loss"]))
    diverging = [a for a in alarms.alerts if a["rule"] == "diverging"]
    assert [(a["epoch"], a["event"]) for a in diverging] == [(4, "started")]
    assert diverging[0]["message"].startswith("diverging since epoch 2: training loss rose 3 epochs running")
    learning = AlarmsCallback(None, SummaryWriters(str(tmp_path / "ok")), NAMES, out=io.StringIO())
    tiny_model().fit(*tiny_data(300), validation_split=0.3, epochs=5, batch_size=32, callbacks=[learning],
                     verbose=0)
    assert learning.alerts == []


def test_a_failing_rule_warns_once_and_training_goes_on(tmp_path):
    x, y = tiny_data(120)
    alarms = AlarmsCallback(None, SummaryWriters(str(tmp_path)), NAMES)
    alarms.alarms.rules = (RaisingRule(),)
    with pytest.warns(RuntimeWarning, match="alarms at epoch 1: ZeroDivisionError") as caught:
        history = tiny_model().fit(x, y, validation_split=0.3, epochs=3, callbacks=[alarms], verbose=0)
    assert len(history.history["loss"]) == 3
    assert sum("alarms" in str(w.message) for w in caught) == 1


# The suite: TensorBoard's `alerts` text and the generalisation scalars.

def _suite_fit(run_dir: str, alarms: bool, epochs: int = 3):
    x, y = shuffled_data()
    model = tiny_model()
    suite = monitoring_callbacks(NAMES, run_dir, alarms=alarms, tensorboard=False, grid_size=0,
                                 probability_images=0, mistakes=0, pr_curves=False)
    history = model.fit(x, y, validation_split=0.5, epochs=epochs, batch_size=32, callbacks=suite, verbose=0)
    close_suite(suite)
    return suite, history.history


def test_the_suite_writes_the_alerts_text_and_the_gaps(tmp_path, capsys):
    run_dir = str(tmp_path / "on")
    suite, history = _suite_fit(run_dir, alarms=True)
    alerts = suite_alarms(suite).alerts
    assert [(a["epoch"], a["rule"]) for a in alerts] == [(3, "not_learning")]
    assert capsys.readouterr().out.count("Alarm, epoch 3/3: not learning") == 1
    acc = accumulator(os.path.join(run_dir, "monitor"))
    (event,) = acc.Tensors("alerts/epochs_001-010")
    text = tf.make_ndarray(event.tensor_proto).item().decode()
    assert event.step == 2 and text == f"- epoch 3, **not_learning** started: {alerts[0]['message']}"
    for tag, key in (("generalisation/loss_gap", "loss"), ("generalisation/accuracy_gap", "accuracy")):
        events = acc.Tensors(tag)
        assert [e.step for e in events] == [0, 1, 2]
        gaps = [float(tf.make_ndarray(e.tensor_proto)) for e in events]
        assert gaps == pytest.approx(np.subtract(history[f"val_{key}"], history[key]), abs=1e-6)


def test_alarms_off_writes_and_says_nothing(tmp_path, capsys):
    run_dir = str(tmp_path / "off")
    suite, _ = _suite_fit(run_dir, alarms=False)
    assert suite_alarms(suite) is None
    tags = read_tags(run_dir)["monitor"]
    assert not any(t.startswith(("alerts", "generalisation")) for t in tags) and tags
    assert "Alarm" not in capsys.readouterr().out


# A whole run: metrics.json's `alerts` and report.html's banner.

def test_a_run_records_its_alerts_and_its_report_shows_them_first(tmp_path, synthetic_data_dir):
    splits = load_splits("mnist", str(synthetic_data_dir), 0.3, 42, 300)
    rng = np.random.default_rng(0)
    splits = dataclasses.replace(splits, y_train=rng.permutation(splits.y_train),
                                 y_val=rng.permutation(splits.y_val))
    config = RunConfig(model="simple", dataset="mnist", epochs=3, batch_size=64, limit=300,
                       logdir=str(tmp_path), run_name="shuffled", grid_size=0, probability_images=0)
    printed = io.StringIO()
    record = training.run(config, splits, out=printed)
    run_dir = tmp_path / "shuffled"
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["alerts"] == record["alerts"]
    not_learning = [a for a in saved["alerts"] if a["rule"] == "not_learning"]
    assert [(a["epoch"], a["event"]) for a in not_learning] == [(3, "started")]
    assert set(not_learning[0]["numbers"]) == {"val_accuracy", "chance", "epochs"}
    assert f"Alarm, epoch 3/3: {not_learning[0]['message']}" in printed.getvalue()
    page = (run_dir / "report.html").read_text()
    order = [page.index(f'id="{i}"') for i in ("summary", "alarms", "curves", "confusion", "provenance",
                                                "flags")]
    assert order == sorted(order)
    assert "epoch 3: not learning: validation accuracy" in page
    # a message is HTML-escaped in the banner
    saved["alerts"][0]["message"] = "<script>x</script>"
    (run_dir / "metrics.json").write_text(json.dumps(saved))
    build_report(str(run_dir))
    assert "&lt;script&gt;x&lt;/script&gt;" in (run_dir / "report.html").read_text()
