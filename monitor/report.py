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
import html
import json
import os
import sys

from monitor.errors import MonitorError
from monitor.runfiles import (
    SUITE_DIR,
    TEST_DIR,
    damage,
    event_files,
    matrices,
    multilabel_counts,
    record,
    test_confusion,
)

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
.banner ul { margin: 6px 0 0; padding-left: 20px; } .banner li.ended { color: #616161; }
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


def _last_grid_png(run_dir: str, tag_prefix: str = "predictions/grid",
                   folder: str = SUITE_DIR) -> tuple[int, bytes] | None:
    """(step, PNG) of the last epoch's image under `tag_prefix` (the prediction grid by default),
    as written into the run's event files in `folder`."""
    best = None
    for path in event_files.paths(os.path.join(run_dir, folder)):
        damaged = event_files.Damage(path)
        for event in event_files.events(path, damaged):
            png = event_files.image_png(event, tag_prefix)
            if png is not None and (best is None or event.step >= best[0]):
                best = (event.step, png)
        if damaged.describe():  # what is intact is shown; what is not, said once
            damage.say(path, damaged.describe())
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
    run = record.require(run_dir)
    name = os.path.basename(os.path.normpath(run_dir))
    data = _read_run(run_dir, run)
    pngs = _pictures(name, run, data)
    for key, png in pngs.items():
        with open(os.path.join(run_dir, PNG_FILES[key]), "wb") as f:
            f.write(png)
    # What a reader came for first (summary, alarms, curves, matrices), the long tables last.
    sections = [*_head_sections(run, pngs), *_curve_sections(run, run_dir), *_table_sections(data),
                *_multilabel_sections(run_dir)]
    if "grid" in pngs:
        sections.append(f'<section id="predictions"><h2>Sample predictions (epoch {data["grid"][0] + 1})</h2>'
                        + _img(pngs["grid"], "validation images with their predictions") + "</section>")
    sections += [*_explanation_sections(run_dir), _provenance_section(run, run_dir), _flags_section(run)]
    path = os.path.join(run_dir, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(_page(name, run, sections))
    return path


def _read_run(run_dir: str, run: dict) -> dict:
    """What the report shows, from the run's files (each None when the run has none)."""
    return {"validation": matrices.last(run_dir), "test": test_confusion.read(run_dir),
            "grid": _last_grid_png(run_dir), "history": run.get("history") or {}}


def _pictures(name: str, run: dict, data: dict) -> dict[str, bytes]:
    from monitor.render import confusion_heatmap, training_curves

    pngs: dict[str, bytes] = {}
    if data["history"].get("loss"):
        pngs["curves"] = training_curves({name: data["history"]},
                                         f"{name}: training (solid) vs validation (dashed)")
    if data["validation"] is not None:
        epoch, names, cm = data["validation"]
        pngs["validation"] = confusion_heatmap(cm, names, f"Validation, epoch {epoch + 1}", normalized=True)
    if data["test"] is not None:
        pngs["test"] = confusion_heatmap(data["test"][1], data["test"][0], "Test", normalized=True)
    if data["grid"] is not None:
        pngs["grid"] = data["grid"][1]
    return pngs


def _epochs_run(run: dict) -> int:
    return int(run.get("epochs_run") or len((run.get("history") or {}).get("loss", [])))


def _head_sections(run: dict, pngs: dict[str, bytes]) -> list[str]:
    """The banner of an unfinished run, the summary, the alarms, the curves, the matrices."""
    sections, status, final = [], str(run.get("status")), record.final_metrics(run)
    if status != "completed":
        sections.append(f'<div class="banner"><b>This run did not complete</b> (status: '
                        f'{html.escape(status)}): {_epochs_run(run)} of {run["flags"].get("epochs")} epochs. '
                        "The report shows what it has; there is no test result. "
                        + (f"Resume with <code>{html.escape(run['resume_command'])}</code>."
                           if run.get("resume_command") else "") + "</div>")
    validation_accuracy = ((run.get("final") or {}).get("validation") or {}).get("accuracy")
    kpis = [("test accuracy", final["test_accuracy"]), ("validation accuracy", validation_accuracy),
            ("epochs", _epochs_run(run)), ("parameters", run.get("parameters"))]
    sections.append('<section id="summary"><h2>Summary</h2><div class="kpi">' + "".join(
        f"<div><b>{html.escape(_fmt(v))}</b>{html.escape(k)}</div>" for k, v in kpis) + "</div></section>")
    if run.get("alerts"):
        sections.append(_alarms_banner(run["alerts"]))
    if "curves" in pngs:
        sections.append('<section id="curves"><h2>Training curves</h2>'
                        + _img(pngs["curves"], "training and validation loss and accuracy") + "</section>")
    figures = [f"<figure>{_img(pngs[k], caption)}<figcaption>{caption}</figcaption></figure>"
               for k, caption in (("validation", "Validation, last epoch (row-normalised)"),
                                  ("test", "Test (row-normalised)")) if k in pngs]
    if figures:
        sections.append('<section id="confusion"><h2>Confusion matrices</h2><div class="figures">'
                        + "".join(figures) + "</div></section>")
    return sections


def _curve_sections(run: dict, run_dir: str) -> list[str]:
    """A binary head's last ROC curve, and calibration: the reliability diagrams of the last
    validated epoch and of the test split, with their ECE."""
    out = []
    roc = _last_grid_png(run_dir, "binary/roc")
    if roc is not None:
        out.append(f'<section id="binary"><h2>ROC curve (validation, epoch {roc[0] + 1})</h2>'
                   + _img(roc[1], "ROC curve with the threshold and the best-F1 threshold marked")
                   + "</section>")
    figures = []
    ece = [e for e in run.get("validation_ece") or [] if e is not None]
    test_ece = ((run.get("final") or {}).get("test") or {}).get("ece")
    for (step_png, caption) in ((_last_grid_png(run_dir, "calibration/reliability"), "Validation, last epoch"
                                 + (f", ECE {ece[-1]:.4f}" if ece else "")),
                                (_last_grid_png(run_dir, "calibration/reliability", TEST_DIR), "Test"
                                 + (f", ECE {test_ece:.4f}" if isinstance(test_ece, float) else ""))):
        if step_png is not None:
            figures.append(f"<figure>{_img(step_png[1], caption)}<figcaption>{html.escape(caption)}"
                           "</figcaption></figure>")
    if figures:
        out.append('<section id="calibration"><h2>Calibration</h2><div class="figures">' + "".join(figures)
                   + "</div></section>")
    return out


def _explanation_sections(run_dir: str) -> list[str]:
    """The last epoch's Grad-CAM pictures (`explanations/mistakes`, `explanations/grid`), if any."""
    figures, steps = [], []
    for prefix, caption in (("explanations/mistakes", "Most confident mistakes: the image, why the "
                             "prediction, where the true class is"),
                            ("explanations/grid", "Sample predictions: the image, why the prediction")):
        found = _last_grid_png(run_dir, prefix)
        if found is not None:
            steps.append(found[0])
            figures.append(f"<figure>{_img(found[1], caption)}<figcaption>{html.escape(caption)}"
                           "</figcaption></figure>")
    if not figures:
        return []
    return [f'<section id="explanations"><h2>Why: Grad-CAM heat maps (validation, epoch {max(steps) + 1})'
            "</h2><p>Red: where the image most raised the class's score (Grad-CAM, Selvaraju et al. "
            "2017, at the layer named in each picture's title).</p><div class=\"figures\">"
            + "".join(figures) + "</div></section>"]


def _alarms_banner(alerts: list) -> str:
    """The alarms the run said (metrics.json's `alerts`), one line each, in order."""
    items = []
    for a in alerts:
        a = a if isinstance(a, dict) else {"message": str(a)}
        css = ' class="ended"' if a.get("event") == "ended" else ""
        items.append(f"<li{css}>epoch {html.escape(_fmt(a.get('epoch')))}: "
                     f"{html.escape(str(a.get('message', '')))}</li>")
    started = sum(isinstance(a, dict) and a.get("event") != "ended" for a in alerts)
    return (f'<div class="banner" id="alarms"><b>Alarms</b> ({started} raised; they never changed '
            f"training)<ul>{''.join(items)}</ul></div>")


def _flags_section(run: dict) -> str:
    return ('<section id="flags"><h2>Flags</h2>'
            + _table([{"flag": k, "value": v} for k, v in run["flags"].items()], ["flag", "value"])
            + "</section>")


def _table_sections(data: dict) -> list[str]:
    """Per-class metrics and most-confused pairs of the test matrix (else the last validation one)."""
    from monitor.metrics import confused_pairs, per_class

    if data["test"] is not None:
        (names, cm), which = data["test"], "test"
    elif data["validation"] is not None:
        epoch, names, cm = data["validation"]
        which = f"validation, epoch {epoch + 1}"
    else:
        return []
    stats = per_class(cm)
    rows = [{"class": n, **{m: float(stats[m][i]) for m in ("precision", "recall", "f1")},
             "support": int(stats["support"][i])} for i, n in enumerate(names)]
    pairs = confused_pairs(cm, names, top=10)
    return [f'<section id="per-class"><h2>Per-class metrics ({html.escape(which)})</h2>'
            + _table(rows, ["class", "precision", "recall", "f1", "support"]) + "</section>",
            f'<section id="confused-pairs"><h2>Most-confused pairs ({html.escape(which)})</h2>'
            + _table([{"true": t, "predicted": p, "count": n} for t, p, n in pairs],
                     ["true", "predicted", "count"]) + "</section>"]


def _multilabel_sections(run_dir: str) -> list[str]:
    """A multi-label run's per-label table of its last validated epoch (it has no confusion matrix)."""
    from monitor.metrics import multilabel_averages, multilabel_per_class
    from monitor.multilabel import counts_from_payload

    line = multilabel_counts.last(run_dir)
    if line is None:
        return []
    names = [str(n) for n in line["class_names"]]
    m = counts_from_payload(line, len(names))
    stats = multilabel_per_class(m.tp, m.fp, m.fn)
    avg = multilabel_averages(m.tp, m.fp, m.fn, m.count, m.exact)
    rows = [{"label": n, **{k: float(stats[k][i]) for k in ("precision", "recall", "f1")},
             "positives": int(m.support[i]), "TP": int(m.tp[i]), "FP": int(m.fp[i]), "FN": int(m.fn[i])}
            for i, n in enumerate(names)]
    return [f'<section id="multi-label"><h2>Multi-label: per-label metrics (validation, epoch '
            f'{int(line["epoch"]) + 1}, threshold {m.threshold:g})</h2><p>Each image may carry several '
            f"labels, so there is no confusion matrix. Exact match {avg['exact_match']:.4f}, Hamming "
            f"accuracy {avg['hamming_accuracy']:.4f}, over {m.count} images.</p>"
            + _table(rows, ["label", "precision", "recall", "f1", "positives", "TP", "FP", "FN"])
            + "</section>"]


def _provenance_section(run: dict, run_dir: str) -> str:
    provenance = run.get("provenance") or {}
    rows = [{"item": "run directory", "value": run.get("run_dir", run_dir)},
            {"item": "data", "value": provenance.get("data_source")},
            {"item": "data sha256", "value": provenance.get("data_sha256")},
            {"item": "git", "value": provenance.get("git")},
            {"item": "wall time (s)", "value": run.get("wall_time_s")},
            {"item": "train / validation / test images",
             "value": f"{run.get('train_size')} / {run.get('validation_size')} / {run.get('test_size')}"},
            *({"item": k, "value": v} for k, v in (provenance.get("packages") or {}).items())]
    return '<section id="provenance"><h2>Provenance</h2>' + _table(rows, ["item", "value"]) + "</section>"


def _page(name: str, run: dict, sections: list[str]) -> str:
    flags, test_acc = run["flags"], record.final_metrics(run)["test_accuracy"]
    title = f"{name}: {flags.get('model')} on {flags.get('dataset')}"
    subtitle = (f"test accuracy {test_acc:.4f}" if isinstance(test_acc, float) else str(run.get("status"))) \
        + f" · {_epochs_run(run)} epochs"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
            f"<main>{''.join(sections)}</main></body></html>\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.report", description=(
        "Build a run's report.html (self-contained) and its PNGs from the run's own files."))
    parser.add_argument("run_dir", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with damage.on_one_line("python -m monitor.report"):  # a damaged file: one line, the rest shown
            path = build_report(args.run_dir)
    except (MonitorError, OSError) as err:
        print(f"python -m monitor.report: error: {err}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
