"""Class-count thresholds and sizes, named once.

Python reads them from here; the dashboard's JavaScript gets `DASHBOARD_LIMITS` from the
plugin (with its `runs` route), never from copies of its own.
"""

from __future__ import annotations

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
