"""Tests for monitor.metrics against scikit-learn and brute-force references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

from monitor import metrics
from monitor.runfiles import per_class_csv
from tests.pr_reference import pr_bucket_histograms, pr_bucket_indices

CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _random_labels(seed: int, num_classes: int = 6, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Random (y_true, y_pred): class 1 has no support, class 2 is never predicted."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice([c for c in range(num_classes) if c != 1], size=n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, num_classes, n))
    y_pred[y_pred == 2] = 3
    return y_true, y_pred


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_per_class_and_averages_match_sklearn(seed: int) -> None:
    num_classes = 6
    y_true, y_pred = _random_labels(seed, num_classes)
    labels = list(range(num_classes))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    assert cm[1].sum() == 0 and cm[:, 2].sum() == 0

    stats = metrics.per_class(cm)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(stats["precision"], p)
    np.testing.assert_allclose(stats["recall"], r)
    np.testing.assert_allclose(stats["f1"], f)
    np.testing.assert_array_equal(stats["support"], s)
    assert stats["support"].dtype.kind == "i"

    avg = metrics.averages(cm)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        assert avg[f"precision_{average}"] == pytest.approx(p)
        assert avg[f"recall_{average}"] == pytest.approx(r)
        assert avg[f"f1_{average}"] == pytest.approx(f)
    assert avg["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    with warnings.catch_warnings():  # sklearn warns about classes only in y_pred
        warnings.simplefilter("ignore")
        expected_bacc = balanced_accuracy_score(y_true, y_pred)
    assert avg["balanced_accuracy"] == pytest.approx(expected_bacc)
    assert all(isinstance(v, float) for v in avg.values())


def test_normalize_rows_sums_and_empty_row() -> None:
    cm = np.array([[5, 3, 2], [0, 0, 0], [1, 1, 8]])
    norm = metrics.normalize_rows(cm)
    assert norm.dtype == np.float64
    np.testing.assert_allclose(norm.sum(axis=1), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(norm[1], 0.0)
    assert not np.isnan(norm).any()


def test_normalize_rows_single_predicted_class() -> None:
    cm = np.zeros((4, 4), dtype=int)
    cm[:, 2] = [10, 0, 7, 3]
    norm = metrics.normalize_rows(cm)
    np.testing.assert_array_equal(norm[:, 2], [1.0, 0.0, 1.0, 1.0])
    assert norm.sum() == pytest.approx(3.0)


def test_normalize_rows_perfect_is_identity() -> None:
    np.testing.assert_array_equal(metrics.normalize_rows(np.diag([3, 9, 1])), np.eye(3))


def test_empty_matrix_metrics_are_zero() -> None:
    cm = np.zeros((3, 3), dtype=int)
    avg = metrics.averages(cm)
    assert all(v == 0.0 for v in avg.values())
    np.testing.assert_array_equal(metrics.per_class(cm)["f1"], 0.0)


def test_confused_pairs_ordering_and_markdown() -> None:
    names = ["cat", "dog", "bird"]
    cm = np.array(
        [
            [50, 176, 4],
            [176, 40, 0],
            [4, 9, 30],
        ]
    )
    pairs = metrics.confused_pairs(cm, names, top=10)
    assert pairs == [
        ("cat", "dog", 176),
        ("dog", "cat", 176),
        ("bird", "dog", 9),
        ("cat", "bird", 4),
        ("bird", "cat", 4),
    ]
    assert all(isinstance(n, int) for _, _, n in pairs)
    assert metrics.confused_pairs(cm, names, top=2) == pairs[:2]
    md = metrics.confused_pairs_markdown(pairs[:2])
    assert md.splitlines() == ["- cat → dog: 176", "- dog → cat: 176"]
    assert metrics.confused_pairs_markdown([]) == "(no confusions)"
    assert metrics.confused_pairs(np.diag([1, 2, 3]), names) == []


def test_per_class_table_and_markdown() -> None:
    y_true, y_pred = _random_labels(7, num_classes=10, n=500)
    cm = confusion_matrix(y_true, y_pred, labels=range(10))
    table = per_class_csv.frame(cm, CIFAR, epoch=3)  # the per-class CSV's rows of one epoch
    assert list(table["class"]) == CIFAR and set(table["epoch"]) == {3}
    assert list(table.columns) == ["epoch", "class", "precision", "recall", "f1", "support"]
    assert table["support"].sum() == 500

    md = metrics.per_class_markdown(cm, CIFAR)
    lines = md.splitlines()
    assert lines[0].startswith("| class |") and "precision" in lines[0] and "support" in lines[0]
    assert set(lines[1]) <= set("|-: ")
    for name in CIFAR:
        assert any(line.startswith(f"| {name} |") for line in lines)
    assert any("macro avg" in line for line in lines)
    assert any("weighted avg" in line for line in lines)
    assert len(lines) == 2 + len(CIFAR) + 2
    assert "| 0.000 | 0.000 | 0.000 | 0 |" in lines[2 + 1]  # automobile has no support


def _brute_force_pr(labels: np.ndarray, probs: np.ndarray, num_thresholds: int) -> dict[str, np.ndarray]:
    """Per-threshold counts straight from raw scores (score * (T-1) >= t)."""
    num_classes = probs.shape[1]
    out = {k: np.zeros((num_classes, num_thresholds)) for k in ("tp", "fp", "tn", "fn")}
    for c in range(num_classes):
        positive = labels == c
        scaled = np.clip(probs[:, c], 0, 1) * (num_thresholds - 1)
        for t in range(num_thresholds):
            predicted = scaled >= t
            out["tp"][c, t] = np.sum(predicted & positive)
            out["fp"][c, t] = np.sum(predicted & ~positive)
            out["tn"][c, t] = np.sum(~predicted & ~positive)
            out["fn"][c, t] = np.sum(~predicted & positive)
    return out


@pytest.mark.parametrize("num_thresholds", [2, 11, 201])
def test_pr_curve_counts_match_brute_force(num_thresholds: int) -> None:
    rng = np.random.default_rng(num_thresholds)
    n, num_classes = 400, 4
    labels = rng.integers(0, num_classes - 1, n)  # last class has no positives
    probs = rng.dirichlet(np.ones(num_classes), n)
    probs[:5, 0] = 1.0  # exact top score lands in the last bucket
    probs[5:10, 1] = 0.0
    pos, neg = pr_bucket_histograms(labels, probs, num_thresholds)
    assert pos.shape == neg.shape == (num_classes, num_thresholds)
    assert pos.sum() == n and neg.sum() == n * (num_classes - 1)

    curve = metrics.pr_curve_counts(pos, neg)
    expected = _brute_force_pr(labels, probs, num_thresholds)
    for key in ("tp", "fp", "tn", "fn"):
        np.testing.assert_array_equal(curve[key], expected[key], err_msg=key)
    tp, fp, fn = expected["tp"], expected["fp"], expected["fn"]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
    np.testing.assert_allclose(curve["precision"], precision)
    np.testing.assert_allclose(curve["recall"], recall)
    np.testing.assert_array_equal(curve["recall"][-1], 0.0)  # no positives -> 0, as TensorBoard
    np.testing.assert_allclose(curve["thresholds"], np.linspace(0, 1, num_thresholds))
    np.testing.assert_allclose(curve["recall"][:-1, 0], 1.0)  # threshold 0 takes everything


def test_pr_bucket_float32_matches_tensorboard_formula() -> None:
    probs = np.array([[0.29, 0.71], [1.0, 0.0], [0.5, 0.5], [1.3, -0.2]], dtype=np.float32)
    buckets = pr_bucket_indices(probs, 101)
    expected = np.floor(np.clip(probs, 0, 1) * np.float32(100)).astype(np.int64)
    np.testing.assert_array_equal(buckets, expected)
    assert buckets.max() == 100 and buckets.min() == 0
    pos, neg = pr_bucket_histograms(np.array([0, 1, 0, 1]), probs, 101)
    assert neg[0, 100] == 2 and pos[1, 0] == 2 and pos[0, 50] == 1
    # Math happens in the scores' dtype, like tf.floor(p * (T - 1)) in float32:
    # float32(0.29) * 100 rounds to 29.0 in float32 but is 28.99... in float64.
    assert pos[0, 29] == 1
    assert pr_bucket_indices(probs.astype(np.float64), 101)[0, 0] == 28


def test_most_confused_classes_picks_the_largest_off_diagonal_mass() -> None:
    cm = np.diag([50] * 6)
    cm[4, 1] = 9  # class 4 -> 1: mass 9 for both
    cm[2, 4] = 3  # class 4 gains 3 more (12), class 2 gets 3
    cm[0, 5] = 1
    chosen = metrics.most_confused_classes(cm, 3)
    assert chosen.dtype.kind == "i" and list(chosen) == [4, 1, 2]
    assert list(metrics.most_confused_classes(cm, 10)) == [4, 1, 2, 0, 5, 3]  # k > C: every class
    assert list(metrics.most_confused_classes(cm, 0)) == []
    assert list(metrics.most_confused_classes(np.diag([5, 5]), 1)) == [0]  # ties by index
    # the diagonal never counts, however large
    assert list(metrics.most_confused_classes(np.diag([1000, 1, 1]) + np.eye(3, k=1, dtype=int), 1)) == [1]


def test_most_confused_classes_counts_mistakes_made_and_received() -> None:
    cm = np.zeros((5, 5), dtype=int)
    cm[0, 1] = cm[0, 2] = cm[0, 3] = 2  # class 0 makes 6 mistakes
    cm[4, 3] = 5  # class 3 receives 2 + 5 = 7
    assert list(metrics.most_confused_classes(cm, 2)) == [3, 0]
    assert list(metrics.most_confused_classes(cm.astype(float) / 10, 2)) == [3, 0]
    with pytest.raises(ValueError):
        metrics.most_confused_classes(np.zeros((2, 3)), 1)
