"""A run's `report.html`: one self-contained page to read a run without TensorBoard.

```
python -m monitor.report logs/cifar10-dropout-20261125-101500
```
Builds, from the run's own files (metrics.json, the confusion-matrix JSONL and CSV, the
event files), `curves.png`, `confusion_validation.png`, `confusion_test.png`,
`prediction_grid.png` and `report.html` in the run directory. The page inlines its images
and style: it fetches nothing and runs no script, so it opens from disk anywhere. A run
that did not finish gets a report of what it has, marked as such. train.py writes it when
a run completes.
"""

from __future__ import annotations

import argparse
import base64
import glob
import html
import json
import os
import sys

import numpy as np

from monitor.errors import MonitorError
from monitor.runs import MATRICES_FILE, TEST_CONFUSION_FILE, read_record

REPORT_FILE = "report.html"
PNG_FILES = {"curves": "curves.png", "validation": "confusion_validation.png",
             "test": "confusion_test.png", "grid": "prediction_grid.png"}
STYLE = """
body { font-family: Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0; color: #212121;
       background: #fafafa; }
header { background: #f57c00; color: white; padding: 16px 32px; }
header h1 { margin: 0; font-size: 22px; font-weight: 500; }
header p { margin: 4px 0 0; opacity: .9; }
main { padding: 8px 32px 32px; max-width: 1280px; }
section { background: white; border-radius: 4px; box-shadow: 0 1px 3px rgba(0,0,0,.15);
          padding: 12px 20px 16px; margin: 16px 0; }
h2 { font-size: 17px; font-weight: 500; margin: 4px 0 12px; }
.banner { background: #fff3e0; border-left: 4px solid #f57c00; padding: 10px 16px; margin: 16px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 13px; color: #616161; margin-top: 4px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; font-weight: 500; }
.kpi { display: flex; gap: 32px; } .kpi div { font-size: 13px; color: #616161; }
.kpi b { display: block; font-size: 26px; color: #212121; font-weight: 400; }
code { font-size: 12px; }
#flags td, #provenance td { text-align: left; }
"""


def _last_validation_matrix(run_dir: str) -> tuple[int, list[str], np.ndarray] | None:
    from callbacks.confusion_matrix import matrix_from_record

    path = os.path.join(run_dir, MATRICES_FILE)
    if not os.path.isfile(path):
        return None
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    last = json.loads(line)
                except ValueError:  # a line cut by a kill
                    continue
    if last is None:
        return None
    return int(last["epoch"]), list(last["class_names"]), matrix_from_record(last)


def _test_matrix(run_dir: str) -> tuple[list[str], np.ndarray] | None:
    import pandas as pd

    path = os.path.join(run_dir, TEST_CONFUSION_FILE)
    if not os.path.isfile(path):
        return None
    table = pd.read_csv(path, index_col=0)
    return [str(c) for c in table.columns], table.to_numpy(dtype=np.int64)


def _last_grid_png(run_dir: str) -> tuple[int, bytes] | None:
    """The last epoch's `predictions/grid` image, as written into the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = os.path.join(run_dir, "monitor")
    if not glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        return None
    acc = EventAccumulator(folder, size_guidance={"tensors": 0, "images": 1, "scalars": 1,
                                                  "histograms": 1, "compressedHistograms": 1})
    acc.Reload()
    best = None
    for tag in acc.Tags().get("tensors", []):
        if tag.startswith("predictions/grid"):
            for event in acc.Tensors(tag):  # image summaries: [width, height, png]
                if best is None or event.step >= best[0]:
                    best = (event.step, event.tensor_proto.string_val[2])
    return best


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def build_report(run_dir: str) -> str:
    """Write the PNGs and report.html into `run_dir`; returns the report's path."""
    record = read_record(run_dir)
    if record is None or not isinstance(record.get("flags"), dict):
        raise MonitorError(f"{run_dir}: not a run directory (no readable metrics.json); give a directory "
                           "train.py created")
    from monitor.metrics import confused_pairs, per_class
    from monitor.render import confusion_heatmap, training_curves

    name = os.path.basename(os.path.normpath(run_dir))
    flags = record["flags"]
    status = str(record.get("status"))
    history = record.get("history") or {}
    epochs_run = int(record.get("epochs_run") or len(history.get("loss", [])))
    pngs: dict[str, bytes] = {}
    if history.get("loss"):
        pngs["curves"] = training_curves({name: history}, f"{name}: training (solid) vs validation (dashed)")
    validation = _last_validation_matrix(run_dir)
    if validation is not None:
        epoch, names, cm = validation
        pngs["validation"] = confusion_heatmap(cm, names, f"Validation, epoch {epoch + 1}", normalized=True)
    test = _test_matrix(run_dir)
    if test is not None:
        pngs["test"] = confusion_heatmap(test[1], test[0], "Test", normalized=True)
    grid = _last_grid_png(run_dir)
    if grid is not None:
        pngs["grid"] = grid[1]
    for key, png in pngs.items():
        with open(os.path.join(run_dir, PNG_FILES[key]), "wb") as f:
            f.write(png)

    final = record.get("final") or {}
    test_acc = (final.get("test") or {}).get("accuracy")
    sections = []
    if status != "completed":
        sections.append(f'<div class="banner"><b>This run did not complete</b> (status: '
                        f'{html.escape(status)}): {epochs_run} of {flags.get("epochs")} epochs. The report '
                        "shows what it has; there is no test result. "
                        + (f"Resume with <code>{html.escape(record['resume_command'])}</code>."
                           if record.get("resume_command") else "") + "</div>")
    val_acc = (final.get("validation") or {}).get("accuracy")
    kpis = [("test accuracy", test_acc), ("validation accuracy", val_acc), ("epochs", epochs_run),
            ("parameters", record.get("parameters"))]
    sections.append('<section id="summary"><h2>Summary</h2><div class="kpi">' + "".join(
        f"<div><b>{html.escape(_fmt(v))}</b>{html.escape(k)}</div>" for k, v in kpis) + "</div></section>")
    sections.append('<section id="flags"><h2>Flags</h2>'
                    + _table([{"flag": k, "value": v} for k, v in flags.items()], ["flag", "value"])
                    + "</section>")
    if "curves" in pngs:
        sections.append('<section id="curves"><h2>Training curves</h2>'
                        + _img(pngs["curves"], "training and validation loss and accuracy") + "</section>")
    figures = [f"<figure>{_img(pngs[k], caption)}<figcaption>{caption}</figcaption></figure>"
               for k, caption in (("validation", "Validation, last epoch (row-normalised)"),
                                  ("test", "Test (row-normalised)")) if k in pngs]
    if figures:
        sections.append('<section id="confusion"><h2>Confusion matrices</h2><div class="figures">'
                        + "".join(figures) + "</div></section>")
    cm_for_tables, names, which = None, None, None
    if test is not None:
        names, cm_for_tables, which = test[0], test[1], "test"
    elif validation is not None:
        names, cm_for_tables, which = validation[1], validation[2], f"validation, epoch {validation[0] + 1}"
    if cm_for_tables is not None:
        stats = per_class(cm_for_tables)
        rows = [{"class": n, **{m: float(stats[m][i]) for m in ("precision", "recall", "f1")},
                 "support": int(stats["support"][i])} for i, n in enumerate(names)]
        sections.append(f'<section id="per-class"><h2>Per-class metrics ({html.escape(which)})</h2>'
                        + _table(rows, ["class", "precision", "recall", "f1", "support"]) + "</section>")
        pairs = confused_pairs(cm_for_tables, names, top=10)
        sections.append(f'<section id="confused-pairs"><h2>Most-confused pairs ({html.escape(which)})</h2>'
                        + _table([{"true": t, "predicted": p, "count": n} for t, p, n in pairs],
                                 ["true", "predicted", "count"]) + "</section>")
    if "grid" in pngs:
        sections.append(f'<section id="predictions"><h2>Sample predictions (epoch {grid[0] + 1})</h2>'
                        + _img(pngs["grid"], "validation images with their predictions") + "</section>")
    provenance = record.get("provenance") or {}
    prov_rows = [{"item": "run directory", "value": record.get("run_dir", run_dir)},
                 {"item": "data", "value": provenance.get("data_source")},
                 {"item": "data sha256", "value": provenance.get("data_sha256")},
                 {"item": "git", "value": provenance.get("git")},
                 {"item": "wall time (s)", "value": record.get("wall_time_s")},
                 {"item": "train / validation / test images",
                  "value": f"{record.get('train_size')} / {record.get('validation_size')} / "
                           f"{record.get('test_size')}"},
                 *({"item": k, "value": v} for k, v in (provenance.get("packages") or {}).items())]
    sections.append('<section id="provenance"><h2>Provenance</h2>'
                    + _table(prov_rows, ["item", "value"]) + "</section>")
    title = f"{name}: {flags.get('model')} on {flags.get('dataset')}"
    subtitle = (f"test accuracy {test_acc:.4f}" if isinstance(test_acc, float) else status) + \
        f" · {epochs_run} epochs"
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
            f"<main>{''.join(sections)}</main></body></html>\n")
    path = os.path.join(run_dir, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.report", description=(
        "Build a run's report.html (self-contained) and its PNGs from the run's own files."))
    parser.add_argument("run_dir", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        path = build_report(args.run_dir)
    except (MonitorError, OSError) as err:
        print(f"python -m monitor.report: error: {err}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
