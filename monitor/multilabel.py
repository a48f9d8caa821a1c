"""A multi-label validation pass's counts (`MultiLabelCounts`) and their JSON form
(`multilabel_payload`). Numpy only: no TensorFlow.

Each of C labels is its own yes/no decision, predicted when p >= threshold. Per label,
over the N counted rows: TP, FP, FN and TN = N - TP - FP - FN. `exact` counts the rows whose
every label is right. `cooccurrence[i, j]` counts the rows where label i was missed (FN) while
label j was added (FP): which labels the model puts in place of which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.runfiles.matrices import dense_matrix, sparse_cells


@dataclass(frozen=True)
class MultiLabelCounts:
    """Per-label counts of one multi-label validation pass (see the module docstring)."""

    tp: np.ndarray  # (C,) int64
    fp: np.ndarray  # (C,) int64
    fn: np.ndarray  # (C,) int64
    tn: np.ndarray  # (C,) int64
    count: int  # N, the rows (images) counted
    exact: int  # rows with every label right
    cooccurrence: np.ndarray | None  # (C, C) int64, rows = missed label, columns = added label;
    # None above MULTILABEL_COOCCURRENCE_MAX labels (not computed)
    threshold: float

    @property
    def support(self) -> np.ndarray:
        """(C,) the rows holding each label (its positives)."""
        return self.tp + self.fn


def multilabel_payload(m: MultiLabelCounts) -> dict:
    """The counts as plain JSON values: `count`, `exact`, `tp`, `fp`, `fn`, `tn` (lists of C ints),
    `cooccurrence` ([[missed, added, rows], ...], the nonzero cells; None when not computed) and
    `threshold` (float). The dashboard's `multilabel_counts` writer and the run file take this."""
    cells = None if m.cooccurrence is None else sparse_cells(m.cooccurrence).tolist()
    return {"count": int(m.count), "exact": int(m.exact),
            **{k: [int(v) for v in getattr(m, k)] for k in ("tp", "fp", "fn", "tn")},
            "cooccurrence": cells, "threshold": float(m.threshold)}


def counts_from_payload(payload: dict, num_classes: int) -> MultiLabelCounts:
    """Inverse of `multilabel_payload` (the number of labels is not in the payload)."""
    cells = payload.get("cooccurrence")
    cooc = None if cells is None else dense_matrix(cells, num_classes)
    return MultiLabelCounts(
        *(np.asarray(payload[k], np.int64) for k in ("tp", "fp", "fn", "tn")),
        count=int(payload["count"]), exact=int(payload["exact"]), cooccurrence=cooc,
        threshold=float(payload["threshold"]))
