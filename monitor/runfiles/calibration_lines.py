"""`validation_calibration.jsonl`: the reliability statistics of each validated epoch, one line each.

Each line: `{"epoch", "bins", "count", "confidence_sum", "correct", "ece", "mce",
"over_confidence"}`: per equal-width confidence bin (the predicted class's probability, `bins`
bins over [0, 1]) the images, the sum of their confidences and how many were right; and the
figures computed from them (`monitor.calibration.reliability`; null where undefined). A
multi-label run has no such file.
"""

from __future__ import annotations

import math
import os

from monitor.runfiles import lines

FILE = "validation_calibration.jsonl"


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def append(run_dir: str, epoch: int, statistics: dict, figures: dict) -> None:
    """`statistics`: the capture's `count`, `confidence_sum`, `correct` (arrays); `figures`:
    `ece`, `mce`, `over_confidence`."""
    line = {"epoch": epoch, "bins": len(statistics["count"]),
            **{k: [float(v) if k == "confidence_sum" else int(v) for v in statistics[k]]
               for k in ("count", "confidence_sum", "correct")},
            **{k: _number(figures.get(k)) for k in ("ece", "mce", "over_confidence")}}
    lines.append_json_line(path(run_dir), line)


def read_lines(run_dir: str) -> list[dict]:
    return lines.read_json_lines(path(run_dir))


def ece_by_epoch(run_dir: str) -> dict[int, float | None]:
    """epoch (from 0) -> ECE, for every whole line."""
    return {int(line["epoch"]): line.get("ece") for line in read_lines(run_dir) if "epoch" in line}


def truncate(run_dir: str, from_epoch: int) -> None:
    lines.keep_epochs_before(path(run_dir), from_epoch)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
