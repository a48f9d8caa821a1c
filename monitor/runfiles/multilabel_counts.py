"""`validation_multilabel_counts.jsonl`: a multi-label head's per-label counts, one line per validated epoch.

Each line: `{"epoch", "class_names", "count", "exact", "tp", "fp", "fn", "tn", "cooccurrence",
"threshold"}` (`monitor.multilabel.multilabel_payload`): N rows counted, rows with every label
right, per-label counts at the threshold (lists in class order), and the nonzero cells
`[missed, added, rows]` of the missed x added label co-occurrence (null above
`MULTILABEL_COOCCURRENCE_MAX` labels). A single-label or binary run has no such file.
"""

from __future__ import annotations

import os

from monitor.runfiles import lines

FILE = "validation_multilabel_counts.jsonl"


def path(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def append(run_dir: str, epoch: int, class_names: list[str], payload: dict) -> None:
    """Append one epoch's line: `payload` is `multilabel_payload(counts)`."""
    lines.append_json_line(path(run_dir), {"epoch": epoch, "class_names": list(class_names), **payload})


def read_lines(run_dir: str) -> list[dict]:
    """Every whole line, in order (a line cut short by a kill is left out)."""
    return lines.read_json_lines(path(run_dir))


def last(run_dir: str) -> dict | None:
    """The last validated epoch's line, or None (no file: not a multi-label run)."""
    records = read_lines(run_dir)
    return records[-1] if records else None


def truncate(run_dir: str, from_epoch: int) -> None:
    """Keep the lines of epochs < `from_epoch` (and drop a line cut short)."""
    lines.keep_epochs_before(path(run_dir), from_epoch)
