"""Compare finished runs: training vs validation curves on shared axes and a table of final metrics.

```
python -m monitor.compare logs/baseline logs/dropout              # writes into logs/
python -m monitor.compare logs/a logs/b --out logs/a-vs-b
```
Writes `comparison.png` (loss and accuracy per run, epochs on x), `comparison.md` (the
final metrics as a markdown table) and, for TensorBoard, the image `comparison/curves` and
the text `comparison/table` in `<out>/comparison/`. `train.py --model baseline dropout`
calls the same code after its runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from monitor.errors import MonitorError
from monitor.runfiles import damage, record

PNG_FILE = "comparison.png"
TABLE_FILE = "comparison.md"
SUMMARY_DIR = "comparison"
FINAL_COLUMNS = {"val accuracy": "val_accuracy", "val loss": "val_loss", "test accuracy": "test_accuracy",
                 "test loss": "test_loss", "test macro F1": "test_macro_f1"}
COLUMNS = ("run", "model", "dataset", "epochs", "val accuracy", "val loss", "test accuracy", "test loss",
           "test macro F1", "status")


def load_runs(run_dirs: list[str]) -> dict[str, dict]:
    """run label (directory name) -> metrics.json record; MonitorError for a directory that is not a
    run. Of several runs, one whose metrics.json is damaged is left out (said once)."""
    records: dict[str, dict] = {}
    for run_dir in run_dirs:
        if len(run_dirs) > 1 and os.path.isfile(record.path(run_dir)) and record.read(run_dir) is None:
            damage.say(record.path(run_dir), "damaged (cut short or not JSON), so that run is left out")
            continue
        run = record.require(run_dir)
        label = os.path.basename(os.path.normpath(run_dir))
        while label in records:
            label += "'"
        records[label] = run
    if not records:
        raise MonitorError("no run left to compare: every metrics.json given is damaged")
    return records


def comparison_table(records: dict[str, dict]) -> str:
    """The final metrics of each run as a markdown table (runs in the order given)."""
    def cell(value, digits=4):
        if value is None:
            return "–"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    align = "|" + "|".join("---" if c in ("run", "model", "dataset", "status") else "---:" for c in COLUMNS)
    lines = ["| " + " | ".join(COLUMNS) + " |", align + "|"]
    for label, run in records.items():
        final = record.final_metrics(run)
        row = {"run": label, "model": run["flags"].get("model"), "dataset": run["flags"].get("dataset"),
               "epochs": final["epochs_run"], "status": run.get("status"),
               **{column: final[key] for column, key in FINAL_COLUMNS.items()}}
        lines.append("| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(run_dirs: list[str], out_dir: str) -> dict[str, str]:
    """Write the PNG, the markdown table and the TensorBoard summaries; returns their paths."""
    records = load_runs(run_dirs)  # before TensorFlow loads: a bad directory is reported at once
    from monitor import summaries
    from monitor.render import training_curves
    from monitor.writers import SummaryWriters

    histories = {label: record.get("history") or {} for label, record in records.items()}
    title = "Training (solid) vs validation (dashed): " + " vs ".join(records)
    png = training_curves(histories, title)
    table = comparison_table(records)
    os.makedirs(out_dir, exist_ok=True)
    paths = {"png": os.path.join(out_dir, PNG_FILE), "table": os.path.join(out_dir, TABLE_FILE),
             "summaries": os.path.join(out_dir, SUMMARY_DIR)}
    with open(paths["png"], "wb") as f:
        f.write(png)
    with open(paths["table"], "w", encoding="utf-8") as f:
        f.write(table)
    def write() -> None:
        summaries.png_image("comparison/curves", png, 0, description=title)
        summaries.text("comparison/table", table, 0)

    SummaryWriters(out_dir, background=False).write_now(SUMMARY_DIR, write, "writing the comparison")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.compare", description=(
        "Compare runs: loss and accuracy curves on shared axes (PNG and TensorBoard image) and a "
        "markdown table of their final metrics."))
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories made by train.py")
    parser.add_argument("--out", help="where to write (default: the runs' common parent directory)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = args.out or os.path.commonpath([os.path.abspath(os.path.dirname(os.path.normpath(d)))
                                          for d in args.run_dirs])
    try:
        with damage.on_one_line("python -m monitor.compare"):
            paths = write_comparison(args.run_dirs, out)
    except (MonitorError, OSError) as err:
        print(f"python -m monitor.compare: error: {err}", file=sys.stderr)
        return 2
    print(open(paths["table"], encoding="utf-8").read(), end="")
    print(f"Wrote {paths['png']}, {paths['table']} and {paths['summaries']}/ (TensorBoard)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
