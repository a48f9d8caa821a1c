"""Confusion-matrix and precision-recall math (numpy in, numpy out).

Conventions: ``cm[i, j]`` counts samples of true class ``i`` predicted as ``j``.
Every division by zero yields ``0.0`` (sklearn's ``zero_division=0``) without
emitting numpy warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.names import markdown_text

# TensorBoard's pr_curve plugin divides by max(_MINIMUM_COUNT, denominator).
PR_MINIMUM_COUNT = 1e-7


def _as_cm(cm: np.ndarray) -> np.ndarray:
    """Validate a square confusion matrix and return it as an ndarray."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square 2-D, got {cm.shape}")
    return cm


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` as float64, ``0.0`` where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Row-normalise ``cm`` to float rows summing to 1; empty rows stay zero."""
    cm = _as_cm(cm)
    return _safe_div(cm, cm.sum(axis=1, keepdims=True))


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 (float, shape (C,)) and int support."""
    cm = _as_cm(cm)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    # F1 as sklearn computes it: 2 tp / (support + predicted).
    return {
        "precision": _safe_div(tp, predicted),
        "recall": _safe_div(tp, support),
        "f1": _safe_div(2.0 * tp, support + predicted),
        "support": support.astype(np.int64),
    }


def averages(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, macro/weighted P/R/F1 and balanced accuracy, as in sklearn.

    Macro averages run over all C classes (sklearn with ``labels=range(C)``);
    weighted ones are weighted by support; balanced accuracy averages recall
    over classes that have support (sklearn's ``balanced_accuracy_score``).
    """
    cm = _as_cm(cm)
    stats = per_class(cm)
    support = stats["support"].astype(np.float64)
    total = float(support.sum())
    out: dict[str, float] = {
        "accuracy": float(_safe_div(np.trace(cm), total)),
    }
    for key in ("precision", "recall", "f1"):
        values = stats[key]
        out[f"{key}_macro"] = float(values.mean()) if values.size else 0.0
        out[f"{key}_weighted"] = float(np.dot(values, support) / total) if total > 0 else 0.0
    present = support > 0
    out["balanced_accuracy"] = float(stats["recall"][present].mean()) if present.any() else 0.0
    return out


def confused_pairs(cm: np.ndarray, class_names: Sequence[str], top: int = 5) -> list[tuple[str, str, int]]:
    """Top off-diagonal cells as ``(true, predicted, count)``, zeros dropped.

    Sorted by count descending; ties by true index, then predicted index.
    """
    cm = _as_cm(cm)
    true_idx, pred_idx = np.nonzero(cm)
    keep = true_idx != pred_idx
    true_idx, pred_idx = true_idx[keep], pred_idx[keep]
    counts = cm[true_idx, pred_idx]
    # lexsort: last key is primary. nonzero() already orders by (i, j).
    order = np.lexsort((pred_idx, true_idx, -counts.astype(np.int64)))[:top]
    return [(str(class_names[true_idx[k]]), str(class_names[pred_idx[k]]), int(counts[k])) for k in order]


def confused_pairs_markdown(pairs: Sequence[tuple[str, str, int]]) -> str:
    """Markdown list lines like ``- cat → dog: 176``; ``(no confusions)`` if empty."""
    if not pairs:
        return "(no confusions)"
    return "\n".join(f"- {markdown_text(t)} → {markdown_text(p)}: {int(n)}" for t, p, n in pairs)


def accuracy(cm: np.ndarray) -> float:
    """Share of the matrix on its diagonal (0.0 for an empty matrix)."""
    cm = _as_cm(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def worst_first_markdown(cm: np.ndarray, class_names: Sequence[str], rows: int, every_class_in: str) -> str:
    """The per-class table sorted by F1, worst first: the `rows` worst and the `rows` best
    classes, then the macro/weighted averages (for class counts too large for one table)."""
    return stats_worst_first_markdown(per_class(cm), averages(cm), class_names, rows, every_class_in)


def stats_worst_first_markdown(stats: dict, avg: dict, class_names: Sequence[str], rows: int,
                               every_class_in: str, kinds: Sequence[str] = ("macro", "weighted")) -> str:
    """`worst_first_markdown` of per-class `stats` and averages `avg` (`precision_<kind>`, ...)."""
    order = np.lexsort((np.arange(len(class_names)), stats["f1"]))
    shown = [("worst", order[:rows]), ("best", order[-rows:][::-1])]
    lines = [f"{len(class_names)} classes, sorted by F1; every class is in `{every_class_in}`.", "",
             "| | class | precision | recall | f1 | support |", "|---|---|---:|---:|---:|---:|"]
    for label, indices in shown:
        for rank, k in enumerate(indices, 1):
            lines.append(f"| {label} {rank} | {markdown_text(class_names[k])} | "
                         f"{stats['precision'][k]:.3f} | {stats['recall'][k]:.3f} | {stats['f1'][k]:.3f} | "
                         f"{int(stats['support'][k])} |")
    total = int(stats["support"].sum())
    for suffix in kinds:
        lines.append(f"| | **{suffix} avg** | {avg[f'precision_{suffix}']:.3f} | "
                     f"{avg[f'recall_{suffix}']:.3f} | {avg[f'f1_{suffix}']:.3f} | {total} |")
    return "\n".join(lines)


def per_class_markdown(cm: np.ndarray, class_names: Sequence[str]) -> str:
    """Markdown table of per-class metrics plus macro and weighted averages."""
    return stats_markdown(per_class(cm), averages(cm), class_names)


def stats_markdown(stats: dict, avg: dict, class_names: Sequence[str],
                   kinds: Sequence[str] = ("macro", "weighted")) -> str:
    """`per_class_markdown` of per-class `stats` and averages `avg` (`precision_<kind>`, ...)."""
    total = int(stats["support"].sum())
    lines = [
        "| class | precision | recall | f1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, name in enumerate(class_names):
        lines.append(
            f"| {markdown_text(name)} | {stats['precision'][k]:.3f} | {stats['recall'][k]:.3f}"
            f" | {stats['f1'][k]:.3f} | {int(stats['support'][k])} |"
        )
    for suffix in kinds:
        lines.append(
            f"| **{suffix} avg** | {avg[f'precision_{suffix}']:.3f}"
            f" | {avg[f'recall_{suffix}']:.3f} | {avg[f'f1_{suffix}']:.3f}"
            f" | {total} |"
        )
    return "\n".join(lines)


def pr_curve_counts(pos_hist: np.ndarray, neg_hist: np.ndarray) -> dict[str, np.ndarray]:
    """PR-curve data per class and threshold from bucket histograms (C, T).

    Threshold ``t`` is ``t / (T - 1)``; a sample counts as predicted-positive at
    ``t`` when its bucket is ``>= t``. Counts are reverse cumulative sums, as in
    TensorBoard's ``pr_curve`` summary. Precision and recall follow its
    convention ``tp / max(1e-7, denominator)``, i.e. 0.0 (not 1.0) when nothing
    is predicted positive / nothing is positive. Returns (C, T) arrays ``tp``,
    ``fp``, ``tn``, ``fn`` (input dtype), ``precision``, ``recall`` (float64)
    and ``thresholds`` (T,), ready for ``pr_curve.summary.raw_data_*``.
    """
    pos = np.atleast_2d(np.asarray(pos_hist))
    neg = np.atleast_2d(np.asarray(neg_hist))
    if pos.shape != neg.shape:
        raise ValueError(f"histogram shapes differ: {pos.shape} vs {neg.shape}")
    num_thresholds = pos.shape[-1]
    tp = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1]
    fp = np.cumsum(neg[:, ::-1], axis=1)[:, ::-1]
    fn = tp[:, :1] - tp
    tn = fp[:, :1] - fp
    tp_f = tp.astype(np.float64)
    precision = tp_f / np.maximum(PR_MINIMUM_COUNT, tp_f + fp)
    recall = tp_f / np.maximum(PR_MINIMUM_COUNT, tp_f + fn)
    thresholds = np.arange(num_thresholds, dtype=np.float64) / max(num_thresholds - 1, 1)
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "thresholds": thresholds,
    }


def most_confused_classes(cm: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` classes with the most off-diagonal mass (mistakes made on the
    class plus mistakes into it), most first; ties by index. O(C^2), no C x C temporaries."""
    cm = _as_cm(cm)
    diagonal = np.diagonal(cm).astype(np.float64)
    mass = cm.sum(axis=0, dtype=np.float64) + cm.sum(axis=1, dtype=np.float64) - 2.0 * diagonal
    return np.lexsort((np.arange(len(mass)), -mass))[: max(0, min(k, len(mass)))]


def _binary_counts(pos_hist: np.ndarray, neg_hist: np.ndarray) -> dict[str, np.ndarray]:
    pos, neg = np.asarray(pos_hist), np.asarray(neg_hist)
    if pos.ndim != 1 or pos.shape != neg.shape:
        raise ValueError(f"one class's histograms (T,) expected, got {pos.shape} and {neg.shape}")
    return {k: v[0] for k, v in pr_curve_counts(pos, neg).items() if k != "thresholds"} | {
        "thresholds": np.arange(len(pos), dtype=np.float64) / max(len(pos) - 1, 1)}


def binary_point(tp: float, fp: float, tn: float, fn: float) -> dict[str, float]:
    """tpr (= recall), fpr, precision and F1 of one operating point; 0.0 where undefined
    (nothing predicted positive, no positives, no negatives), as `pr_curve_counts`."""
    tp, fp, tn, fn = (float(v) for v in (tp, fp, tn, fn))
    recall = tp / max(tp + fn, PR_MINIMUM_COUNT)
    return {"tpr": recall, "fpr": fp / max(fp + tn, PR_MINIMUM_COUNT), "recall": recall,
            "precision": tp / max(tp + fp, PR_MINIMUM_COUNT),
            "f1": 2 * tp / max(2 * tp + fp + fn, PR_MINIMUM_COUNT)}


def roc_points(pos_hist: np.ndarray, neg_hist: np.ndarray) -> dict[str, np.ndarray]:
    """ROC points of one class from its histograms (T,): ``fpr``, ``tpr`` and ``thresholds``
    (T,), threshold ``t / (T - 1)`` predicting positive for buckets ``>= t`` (so the first
    point is (1, 1)). 0.0 where there are no negatives / no positives."""
    c = _binary_counts(pos_hist, neg_hist)
    fpr = c["fp"] / np.maximum(PR_MINIMUM_COUNT, (c["fp"] + c["tn"]).astype(np.float64))
    return {"fpr": fpr, "tpr": c["recall"], "thresholds": c["thresholds"]}


def roc_auc(pos_hist: np.ndarray, neg_hist: np.ndarray) -> float:
    """Area under the ROC curve: trapezoids over the thresholded points plus (0, 0) and
    (1, 1). Equals `sklearn.metrics.roc_auc_score` on scores quantised to the buckets
    (``floor(p * (T-1)) / (T-1)``: ties within a bucket count as half, as there). NaN
    without positives or without negatives."""
    pos, neg = np.asarray(pos_hist), np.asarray(neg_hist)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    r = roc_points(pos, neg)
    fpr = np.concatenate([[0.0], r["fpr"][::-1], [1.0]])  # threshold high -> low: fpr rises
    tpr = np.concatenate([[0.0], r["tpr"][::-1], [1.0]])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def average_precision(pos_hist: np.ndarray, neg_hist: np.ndarray) -> float:
    """PR AUC as average precision, ``sum_t (R_t - R_{t+1}) * P_t`` over thresholds from
    high to low (a step function, no interpolation), as `sklearn.metrics.
    average_precision_score` on scores quantised to the buckets. NaN without positives."""
    pos, neg = np.asarray(pos_hist), np.asarray(neg_hist)
    if pos.sum() == 0:
        return float("nan")
    c = _binary_counts(pos, neg)
    recall_above = np.concatenate([c["recall"][1:], [0.0]])  # recall one threshold higher
    return float(np.sum((c["recall"] - recall_above) * c["precision"]))


def best_f1(pos_hist: np.ndarray, neg_hist: np.ndarray) -> tuple[float, float]:
    """``(threshold, f1)``: the bucket threshold ``t / (T - 1)`` of highest F1 (predicting
    positive for scores ``>= threshold``); ties go to the highest threshold. (1.0, 0.0)
    without positives."""
    c = _binary_counts(pos_hist, neg_hist)
    f1 = 2.0 * c["tp"] / np.maximum(PR_MINIMUM_COUNT, 2.0 * c["tp"] + c["fp"] + c["fn"])
    k = len(f1) - 1 - int(np.argmax(f1[::-1]))
    return float(c["thresholds"][k]), float(f1[k])


def point_at_threshold(pos_hist: np.ndarray, neg_hist: np.ndarray, threshold: float) -> dict[str, float]:
    """`binary_point` predicting positive for quantised scores ``>= threshold``: exact
    for thresholds on the bucket grid, the next grid threshold up otherwise."""
    c = _binary_counts(pos_hist, neg_hist)
    k = int(np.searchsorted(c["thresholds"], threshold - 1e-9))
    if k >= len(c["thresholds"]):
        total_pos, total_neg = c["tp"][0], c["fp"][0]
        return binary_point(0, 0, total_neg, total_pos)
    return binary_point(c["tp"][k], c["fp"][k], c["tn"][k], c["fn"][k])


def multilabel_per_class(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Per-label precision, recall, F1 (float, shape (C,)) and int support (the label's positives)
    from (C,) counts at the threshold. 0.0 where undefined, as `per_class`: sklearn's
    `precision_recall_fscore_support(average=None, zero_division=0)` on multi-hot arrays."""
    tp, fp, fn = (np.asarray(v, np.int64) for v in (tp, fp, fn))
    return {"precision": _safe_div(tp, tp + fp), "recall": _safe_div(tp, tp + fn),
            "f1": _safe_div(2 * tp, 2 * tp + fp + fn), "support": tp + fn}


def multilabel_averages(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, count: int,
                        exact: int) -> dict[str, float]:
    """`{precision,recall,f1}_{micro,macro,weighted}` as sklearn's `average=` on multi-hot arrays
    (weighted by each label's positives), `exact_match` (rows with every label right: sklearn's
    `accuracy_score`) and `hamming_accuracy` (1 - `hamming_loss`). 0.0 where undefined."""
    stats = multilabel_per_class(tp, fp, fn)
    t, p, n = (float(np.sum(v)) for v in (tp, fp, fn))
    micro = {"precision": _safe_div(t, t + p), "recall": _safe_div(t, t + n),
             "f1": _safe_div(2 * t, 2 * t + p + n)}
    support = stats["support"].astype(np.float64)
    total, cells = float(support.sum()), float(count) * len(support)
    out: dict[str, float] = {}
    for key in ("precision", "recall", "f1"):
        out[f"{key}_micro"] = float(micro[key])
        out[f"{key}_macro"] = float(stats[key].mean()) if stats[key].size else 0.0
        out[f"{key}_weighted"] = float(np.dot(stats[key], support) / total) if total > 0 else 0.0
    out["exact_match"] = float(_safe_div(exact, count))
    out["hamming_accuracy"] = 1.0 - (p + n) / cells if cells > 0 else 0.0
    return out
