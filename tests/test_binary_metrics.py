"""ROC / PR AUC and the best-F1 threshold from bucket histograms, against scikit-learn.

On scores quantised to the bucket grid (``floor(p * 100) / 100``) the histograms lose nothing
sklearn uses, so the numbers agree to float rounding (1e-12: sums of at most 101 terms of
ratios of counts). On raw scores the only difference is that scores sharing a bucket are tied:
the ROC AUC moves by at most half the fraction of (positive, negative) pairs sharing a bucket
(checked exactly); AP and the best F1 stay within 0.02 on these samples (T = 101)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from monitor.metrics import average_precision, best_f1, point_at_threshold, roc_auc, roc_points
from tests.pr_reference import pr_bucket_histograms, pr_bucket_indices

T = 101
EXACT = 1e-12


def sample(seed: int, n: int = 500, separation: float = 1.0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int64)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + separation * (2 * y - 1))))
    if seed % 2:
        p = np.round(p, 1)  # heavy ties, scores exactly on the grid
    return y, p


def hists(y, p):
    pos, neg = pr_bucket_histograms(y, np.stack([1 - p, p], 1), T)
    return pos[1], neg[1]


def quantised(p):
    return pr_bucket_indices(p, T) / (T - 1)


@pytest.mark.parametrize("seed", range(6))
def test_auc_and_ap_equal_sklearn_on_quantised_scores(seed):
    y, p = sample(seed, separation=0.3 * seed)
    pos, neg = hists(y, p)
    q = quantised(p)
    assert abs(roc_auc(pos, neg) - roc_auc_score(y, q)) < EXACT
    assert abs(average_precision(pos, neg) - average_precision_score(y, q)) < EXACT


@pytest.mark.parametrize("seed", range(6))
def test_best_f1_and_the_point_at_a_threshold_equal_sklearn(seed):
    y, p = sample(seed)
    pos, neg = hists(y, p)
    q = quantised(p)
    grid = np.arange(T) / (T - 1)
    f1s = np.array([f1_score(y, (q >= t).astype(int), zero_division=0) for t in grid])
    threshold, f1 = best_f1(pos, neg)
    assert abs(f1 - f1s.max()) < EXACT
    assert threshold == grid[np.flatnonzero(f1s >= f1s.max() - EXACT)[-1]]
    for t in (0.3, 0.5, 0.77):
        point = point_at_threshold(pos, neg, t)
        pred = (q >= t).astype(int)
        assert abs(point["precision"] - precision_score(y, pred, zero_division=0)) < EXACT
        assert abs(point["recall"] - recall_score(y, pred)) < EXACT
        assert abs(point["f1"] - f1_score(y, pred, zero_division=0)) < EXACT
        assert abs(point["fpr"] - pred[y == 0].mean()) < EXACT


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_raw_scores_within_the_bucket_width(seed):
    y, p = sample(seed, n=2000)
    pos, neg = hists(y, p)
    tied_pairs = float((pos * neg).sum()) / (pos.sum() * neg.sum())  # pairs sharing a bucket
    assert abs(roc_auc(pos, neg) - roc_auc_score(y, p)) <= tied_pairs / 2 + EXACT
    assert abs(roc_auc(pos, neg) - roc_auc_score(y, p)) < 0.01
    assert abs(average_precision(pos, neg) - average_precision_score(y, p)) < 0.02
    raw_best = max(f1_score(y, (p >= t).astype(int)) for t in np.unique(p))
    _, f1 = best_f1(pos, neg)
    assert raw_best - 0.02 < f1 <= raw_best + EXACT


def test_roc_points_and_degenerate_cases():
    pos, neg = np.zeros(T, np.int64), np.zeros(T, np.int64)
    pos[80], neg[20] = 3, 5
    r = roc_points(pos, neg)
    assert (r["fpr"][0], r["tpr"][0]) == (1.0, 1.0) and (r["fpr"][-1], r["tpr"][-1]) == (0.0, 0.0)
    assert roc_auc(pos, neg) == 1.0 and average_precision(pos, neg) == 1.0
    assert best_f1(pos, neg) == (0.8, 1.0)
    assert np.isnan(roc_auc(pos, 0 * neg)) and np.isnan(roc_auc(0 * pos, neg))
    assert np.isnan(average_precision(0 * pos, neg)) and best_f1(0 * pos, neg) == (1.0, 0.0)
    assert point_at_threshold(pos, neg, 1.5)["recall"] == 0.0
