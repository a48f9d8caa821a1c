"""Rewriting a line-per-epoch file in place (a temporary file, then a rename)."""

from __future__ import annotations

import os
from collections.abc import Callable


def keep(path: str, wanted: Callable[[str], bool], header: int = 0) -> None:
    """Keep the first `header` lines and the lines `wanted` accepts; a missing file stays missing."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    kept = lines[:header] + [line for line in lines[header:] if wanted(line)]
    if kept != lines:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(tmp, path)
