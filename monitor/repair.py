"""Rewrite a run's damaged files without their damaged parts, so every intact epoch is read again.

```
python -m monitor.repair logs/cifar10-dropout-20261125-101500
```
An event file with a corrupted record (a bit flip, a copy gone wrong) stops TensorBoard's Python
loader (`--load_fast=false`) at that record, and one with a corrupted length stops its Rust data
server there too: neither shows the epochs after it. This drops each damaged record (found by the
records' checksums) and a record cut short at the end, keeping every intact one as it was written,
and drops the JSONL/CSV lines cut short; one line per file it changed. `train.py --resume` does the
same for a run it resumes. A run still training is left alone (its files are still being written).
"""

from __future__ import annotations

import argparse
import os
import sys

from monitor.errors import MonitorError
from monitor.resume import truncate_run
from monitor.runfiles import record


def repair(run_dir: str) -> dict[str, str]:
    """Rewrite `run_dir`'s damaged files; returns what each damaged event file lost (relative path
    -> phrase)."""
    damaged: dict[str, str] = {}
    truncate_run(run_dir, None, None, damaged)
    return damaged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.repair", description=(
        "Rewrite a run's damaged event files and JSONL/CSV files without their damaged parts."))
    parser.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    parser.add_argument("--force", action="store_true",
                        help="repair a run whose metrics.json says it is still running (a killed run)")
    args = parser.parse_args(argv)
    try:
        for run_dir in args.run_dirs:
            run = record.require(run_dir)
            if run.get("status") == "running" and not args.force:
                raise MonitorError(f"{run_dir}: its metrics.json says it is still running; stop it first "
                                   "(a killed run: --force, or resume it with train.py --resume, which "
                                   "repairs it too)")
            damaged = repair(run_dir)
            for path, what in damaged.items():
                print(f"{os.path.join(run_dir, path)}: {what}; rewritten without it")
            if not damaged:
                print(f"{run_dir}: no damaged event file")
    except (MonitorError, OSError) as err:
        print(f"python -m monitor.repair: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
