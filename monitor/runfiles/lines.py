"""Line-per-epoch files: rewriting in place (a temporary file, then a rename), and JSONL helpers."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable

from monitor.runfiles import damage


def keep(path: str, wanted: Callable[[str], bool], header: int = 0) -> None:
    """Keep the first `header` lines and the lines `wanted` accepts; a missing file stays missing."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    kept = lines[:header] + [line for line in lines[header:] if wanted(line)]
    if kept != lines:
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(kept)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)  # `path` stays as it was
            raise


def read_json_lines(path: str) -> list[dict]:
    """Every whole JSON object line of a JSONL file, in order; [] without the file. A line cut
    short or damaged is left out, and said once (`damage.say`)."""
    out, skipped = [], 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    out.append(value)
                else:
                    skipped += 1
    except OSError:
        return []
    if skipped:
        damage.say(path, f"{skipped} damaged or cut-short line{'s' if skipped > 1 else ''} skipped")
    return out


def append_json_line(path: str, value: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(value) + "\n")


def keep_epochs_before(path: str, from_epoch: int) -> None:
    """Keep the JSON lines whose `epoch` is < `from_epoch` (and drop a line cut short)."""
    keep(path, lambda line: (epoch := epoch_of(line)) is not None and epoch < from_epoch)


def epoch_of(line: str) -> int | None:
    """The `epoch` of a whole JSON line, else None."""
    try:
        return int(json.loads(line)["epoch"]) if line.endswith("\n") else None
    except (ValueError, KeyError, TypeError):
        return None
