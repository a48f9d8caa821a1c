"""train.py end to end, this working tree against an earlier revision, interleaved.

    python bench/trainpy.py --baseline-rev e793517 --repeats 2

Each repeat runs the same command from both trees (old, new, old, new, ...), each in its own
process on the same data, and reads what the run recorded in metrics.json: test accuracy and
loss (a refactor must leave them as they were: the runs are seeded), the fit time, and the
suite's seconds on the training thread and in the background. Prints a markdown table of the
medians and the new/old ratios. The earlier tree comes from `git archive` into a temporary
folder; nothing is checked out here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("test_accuracy", "test_loss", "fit_time_s", "suite_seconds_on_training_thread",
           "suite_seconds_in_background", "wall_time_s")


def export(rev: str, into: Path) -> Path:
    tree = into / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def one_run(tree: Path, logdir: Path, name: str, args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "CI": "1"}
    command = [sys.executable, str(tree / "train.py"), *args, "--logdir", str(logdir), "--run-name", name]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{tree.name}: train.py failed ({done.returncode}): {done.stderr[-2000:]}")
    record = json.loads((logdir / name / "metrics.json").read_text())
    test = record["final"]["test"]
    return {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
            **{k: record.get(k) for k in FIGURES[2:]}}


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| figure | " + " | ".join(f"{way} (median)" for way in results) + " | new / old |",
             "|---|" + "---:|" * (len(results) + 1)]
    for figure in FIGURES:
        medians = [statistics.median(r[figure] for r in runs) for runs in results.values()]
        ratio = medians[1] / medians[0] if medians[0] else float("nan")
        lines.append(f"| {figure} | " + " | ".join(f"{m:.4f}" for m in medians) + f" | {ratio:.3f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-rev", required=True, help="the earlier revision (a commit or tag)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--train-args", default="--model simple --dataset mnist --limit 6000 --epochs 3",
                   help="train.py's flags for every run (add --data-dir DIR or set MONITOR_DATA_DIR)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"old": export(args.baseline_rev, Path(tmp)), "new": ROOT}
        results: dict[str, list[dict]] = {"old": [], "new": []}
        for repeat in range(args.repeats):
            for way, tree in trees.items():
                run = one_run(tree, Path(tmp) / "logs", f"{way}-{repeat}", args.train_args.split())
                results[way].append(run)
                print(f"{way} {repeat + 1}/{args.repeats}: {results[way][-1]}", flush=True)
    print(f"\n`train.py {args.train_args}`, {args.repeats} repeats each, interleaved; "
          f"old = {args.baseline_rev}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
