"""Class-count thresholds and sizes, and the training alarms' thresholds, named once.

Python reads them from here; the dashboard's JavaScript gets `DASHBOARD_LIMITS` from the
plugin (with its `runs` route), never from copies of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

# Event files and run files
DENSE_MAX_CLASSES = 100  # above: the JSONL lists the nonzero cells only
PER_CLASS_SCALARS_MAX_CLASSES = 30  # above: no per-class scalar tags (they would flood TensorBoard)
TABLE_ROWS = 10  # above PER_CLASS_SCALARS_MAX_CLASSES, the table shows the 10 worst and the 10 best
PR_CURVES_WORST = 10  # curves per epoch above PER_CLASS_SCALARS_MAX_CLASSES classes
PR_CURVES_MAX_CLASSES = 30  # distinct classes that ever get a curve in one run, above that count
EPOCHS_PER_TAG = 10  # TensorBoard keeps 10 images / texts / plugin tensors per tag by default

# Multi-label heads: the (C, C) missed-label x added-label co-occurrence costs O(N*C^2) per batch
# (one (C, N) x (N, C) product); above this many labels it is not computed (None).
MULTILABEL_COOCCURRENCE_MAX = 256

# Outputs of unknown kind: a row of non-negative values summing to 1 within this is a distribution
# (kept as probabilities), anything else is logits (softmax applied). The capture (TensorFlow, in
# the validation pass) and predict.py (numpy) apply the same rule.
DISTRIBUTION_TOLERANCE = 1e-3

# Calibration: equal-width confidence bins of the reliability statistics (Guo et al. 2017 use 15).
CALIBRATION_BINS = 15

# Pictures
ANNOTATE_MAX_CLASSES = 30  # above: the matrix as an unannotated image + the most-confused classes
MOST_CONFUSED = 12  # classes in that annotated sub-matrix
ALL_BARS_MAX_CLASSES = 10  # above: probability bars for the top-k classes and the true class
TOP_K = 5  # classes in those top-k bars

# The dashboard (sent to the browser by the plugin)
DASHBOARD_SUBSET_ABOVE = 60  # classes above which the view opens on the most-confused sub-matrix
DASHBOARD_SUBSET_SIZES = (20, 30, 50)  # the sub-matrix sizes offered
DASHBOARD_TABLE_MAX = 40  # classes shown up to which the values are also an (invisible) table

DASHBOARD_LIMITS = {
    "subsetAbove": DASHBOARD_SUBSET_ABOVE,
    "subsetSizes": list(DASHBOARD_SUBSET_SIZES),
    "tableMax": DASHBOARD_TABLE_MAX,
}


@dataclass(frozen=True)
class AlarmLimits:
    """The thresholds of the training alarms (`monitor.alarms`), named once.

    Epoch counts are whole epochs; margins on losses are relative, on accuracies absolute.
    """

    # Epochs a trend must last before it is an alarm: the validation loss above its minimum
    # (overfitting), a class's recall at 0 (collapse), the validation ECE rising (over-confident).
    patience: int = 3
    # Overfitting: each of those epochs' validation loss is more than this fraction above the
    # lowest so far (0.05: 5%), while the training loss fell. It ends once the validation loss
    # is back within this fraction of its lowest.
    overfitting_margin: float = 0.05
    # Not learning and collapse are judged from this epoch on (1-based): an untrained model is at
    # chance and often predicts mostly one class.
    warmup_epochs: int = 3
    # Not learning: validation accuracy at most this far (absolute) above chance, chance being
    # the larger of 1/C and the largest class's share of the validation images.
    chance_margin: float = 0.05
    # Collapse: one class takes at least this share of the validation predictions ...
    collapse_share: float = 0.6
    # ... and at least this much more than its share of the validation images.
    collapse_excess: float = 0.25
    # Collapse: a class's recall stays at 0 for `patience` epochs while the mean recall of the
    # other classes rises by more than this (absolute).
    collapse_recall_rise: float = 0.02
    # Diverging: the training loss rose at each of this many epochs running ...
    diverging_epochs: int = 3
    # ... and is now at least this many times what it was before them.
    diverging_factor: float = 1.5
    # Over-confident: the validation ECE rose at each of `patience` epochs, by more than this in
    # all (absolute) ...
    ece_rise: float = 0.01
    # ... while the validation accuracy rose by at most this (absolute).
    ece_accuracy_gain: float = 0.005


ALARM_LIMITS = AlarmLimits()
