"""The picture budget: which epochs get TensorBoard images, and that every epoch's numbers stay."""

import pytest

from callbacks import close_suite, monitoring_callbacks
from monitor.picture_budget import PictureBudget
from tests.helpers import NAMES, read_tags, tiny_data, tiny_model

PICTURE_TAGS = ("confusion_matrix/normalized", "confusion_matrix/counts", "predictions/grid",
                "predictions/probabilities", "mistakes/most_confident", "calibration/reliability",
                "explanations/mistakes", "explanations/grid")
BLOCK = "epochs_001-010"


def simulate(budget: PictureBudget, epochs: int, epoch_s: float, picture_cpu_s: float,
             busy_cores: float | None = None) -> list[bool]:
    """Epochs of `epoch_s` seconds whose pictures cost `picture_cpu_s` CPU seconds each, reported
    as soon as they are drawn, while training keeps `busy_cores` cores busy (None: not told); the
    budget's answer per epoch."""
    budget.start(0.0, None if busy_cores is None else 100.0)
    spent, answers = 0.0, []
    for e in range(epochs):
        now = (e + 1) * epoch_s
        cpu_now = None if busy_cores is None else 100.0 + busy_cores * now
        due = budget.due(e, last=e == epochs - 1, spent_cpu_s=spent, now=now, cpu_now=cpu_now)
        spent += picture_cpu_s if due else 0.0
        answers.append(due)
    return answers


def test_short_epochs_on_few_cores_get_pictures_every_few_epochs_within_the_share():
    budget = PictureBudget(0.05, cores=2)
    answers = simulate(budget, 30, epoch_s=2.7, picture_cpu_s=1.0)
    assert answers[0] and answers[-1]  # the first and the last always
    assert 4 <= sum(answers) <= 10, answers  # 5% of 2 cores x 81 s = 8.1 s of drawing, 1 s per epoch
    spent_before_last = sum(answers[:-1]) * 1.0
    assert spent_before_last <= 0.05 * 2 * 2.7 * 29 + 1.0  # within the share, but for one epoch's cost
    assert budget.drawn == [e for e, d in enumerate(answers) if d]
    assert budget.skipped == [e for e, d in enumerate(answers) if not d]


def test_the_share_is_of_the_cpu_training_leaves_idle():
    # 2 cores, training on 1.1 of them: 5% of the 0.9 idle core, not of both
    busy = simulate(PictureBudget(0.05, cores=2), 60, epoch_s=4.0, picture_cpu_s=0.4, busy_cores=1.1)
    told_nothing = simulate(PictureBudget(0.05, cores=2), 60, epoch_s=4.0, picture_cpu_s=0.4)
    assert busy[0] and busy[-1]
    assert sum(busy[:-1]) * 0.4 <= 0.05 * 0.9 * 4.0 * 59 + 0.4  # within 5% of the idle CPU, but one epoch
    assert sum(busy) < 0.6 * sum(told_nothing)  # 0.9 idle core against 2: fewer than half as many
    # every core busy: the first and the last only; a GPU machine's idle cores: every epoch
    assert simulate(PictureBudget(0.05, cores=2), 20, epoch_s=4.0, picture_cpu_s=0.4,
                    busy_cores=2.0) == [True] + [False] * 18 + [True]
    assert all(simulate(PictureBudget(0.05, cores=16), 20, epoch_s=2.7, picture_cpu_s=1.0, busy_cores=1.5))


def test_idle_cores_or_long_epochs_get_pictures_every_epoch():
    assert all(simulate(PictureBudget(0.05, cores=16), 20, epoch_s=2.7, picture_cpu_s=1.0))
    assert all(simulate(PictureBudget(0.05, cores=2), 20, epoch_s=40.0, picture_cpu_s=1.0))


def test_share_zero_draws_every_epoch_and_answers_are_kept():
    assert all(simulate(PictureBudget(0.0, cores=1), 10, epoch_s=0.1, picture_cpu_s=5.0))
    budget = PictureBudget(0.05, cores=1)
    simulate(budget, 5, epoch_s=0.1, picture_cpu_s=5.0)
    assert budget.due(2, last=False, spent_cpu_s=0.0, now=1e9) is False  # asked again: the same answer
    budget.start(10.0)  # a second fit: its first epoch is drawn
    assert budget.due(5, last=False, spent_cpu_s=10.0, now=10.1)


@pytest.mark.parametrize("share", [-0.1, 1.5, True, "5%"])
def test_invalid_share_is_refused(share):
    with pytest.raises(ValueError, match="share"):
        PictureBudget(share)


def test_invalid_option_is_refused_keras_style(tmp_path):
    with pytest.raises(ValueError, match="picture_budget"):
        monitoring_callbacks(NAMES, str(tmp_path), picture_budget=2)


def fit(run_dir: str, epochs: int, **options):
    x, y = tiny_data(240)
    suite = monitoring_callbacks(NAMES, run_dir, **options)
    tiny_model().fit(x, y, validation_split=0.3, epochs=epochs, batch_size=32, callbacks=suite, verbose=0)
    close_suite(suite)
    return read_tags(run_dir)["monitor"]


def test_a_skipped_epoch_has_its_numbers_and_dashboard_data_but_no_images(tmp_path, capfd):
    tags = fit(str(tmp_path / "thin"), 4, picture_budget=1e-9)  # nothing fits: first and last only
    for kind in PICTURE_TAGS:
        assert tags[f"{kind}/{BLOCK}"] == [0, 3], kind
    for tag in ("training_monitor/confusion/validation", "training_monitor/mistakes/validation",
                "training_monitor/explanations/validation", "averages/accuracy", f"per_class/f1/{NAMES[0]}",
                f"pr_curves/{NAMES[0]}", f"text/per_class/{BLOCK}", "calibration/ece"):
        tag = tag if tag in tags else f"{tag}/{BLOCK}"
        assert tags[tag] == [0, 1, 2, 3], tag
    err = capfd.readouterr().err
    assert err.count("monitor: drawing every epoch's pictures would take more than") == 1
    assert "from epoch 2 on" in err


def test_picture_budget_zero_draws_every_epoch(tmp_path, capfd):
    tags = fit(str(tmp_path / "every"), 3, picture_budget=0)
    for kind in PICTURE_TAGS:
        assert tags[f"{kind}/{BLOCK}"] == [0, 1, 2], kind
    assert "picture_budget" not in capfd.readouterr().err
