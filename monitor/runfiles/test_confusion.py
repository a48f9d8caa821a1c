"""`confusion_matrix_test.csv`: the test split's confusion matrix, written once at the end of a run."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from monitor.runfiles import damage

FILE = "confusion_matrix_test.csv"


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def write(run_dir: str, cm: np.ndarray, class_names: list[str]) -> None:
    pd.DataFrame(cm, index=pd.Index(class_names, name="true\\predicted"),
                 columns=class_names).to_csv(path(run_dir))


def read(run_dir: str) -> tuple[list[str], np.ndarray] | None:
    """(class names, counts), or None when the run has no test matrix."""
    if not os.path.isfile(path(run_dir)):
        return None
    try:
        table = pd.read_csv(path(run_dir), index_col=0, encoding_errors="replace")
        numbers = table.apply(pd.to_numeric, errors="coerce")
        if numbers.isna().any().any() or numbers.shape != (len(table.columns), len(table.columns)):
            raise ValueError("a row is cut short or holds something other than counts")
        counts = numbers.to_numpy(dtype=np.int64)
    except (ValueError, pd.errors.ParserError) as err:
        damage.say(path(run_dir), f"damaged ({err}), so left out")
        return None
    return [str(c) for c in table.columns], counts
