"""What the suite costs at 10, 100 and 1,000 classes, next to plain Keras.

Each (classes, way) runs in its own worker process: the `dropout` layer stack with a
C-unit head, random 32x32x3 images (20,000 train, 10,000 validation by default),
batch 256, 4 epochs. The ways, interleaved (plain, suite, plain, suite, ...):

- plain: `fit` with Keras' TensorBoard callback (histograms every epoch);
- suite: `fit` with `monitoring_callbacks(...)` (which includes that same callback),
  then `close_suite` (drained inside the timed fit);
- suite-no-mistakes (with `--ways`): the same without the most-confident-mistakes capture
  (`mistakes=0`), to see what that capture costs.

Per C it prints: validation-pass seconds (median over epochs 2..E) and the suite/plain
ratio, whole-fit seconds (suite drained) and ratio, the suite's training-thread ms per
epoch, its background-thread CPU seconds per epoch, and event-file bytes per epoch
(all of the run, and the suite's own `monitor/`). Medians over repeats.

    .venv/bin/python bench/classes.py --out bench/results/classes.json      # full, ~25 min
    .venv/bin/python bench/classes.py --train 2000 --val 1000 --epochs 2 --classes 10 100   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import add_worker_arguments, run_in_worker, served_as_worker  # noqa: E402  (no Keras)

TARGETS = {"val_ratio": 1.05, "fit_ratio": 1.05, "bg_cpu_s_at_10": 0.4, "bg_cpu_s_at_1000": 1.0,
           "monitor_mb_per_epoch_at_1000": 1.0}


def event_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("events.out.tfevents.*"))


def worker(args) -> dict:
    """One fit of one way; returns its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from bench.timing import random_classifier, validation_timer
    from callbacks import close_suite, monitoring_callbacks, seconds_on_training_thread
    from callbacks.base import ValidationSummaryCallback

    c = args.num_classes
    x, y, model = random_classifier("dropout", c, args.train + args.val)

    val_seconds: list[float] = []

    run_dir = Path(args.run_dir)
    names = [f"class_{i:04d}" for i in range(c)]
    first_epoch_cpu: list[float] = []
    if args.way.startswith("suite"):
        callbacks = monitoring_callbacks(names, str(run_dir),
                                         mistakes=0 if args.way == "suite-no-mistakes" else 64)
        writers = next(cb.writers for cb in callbacks if isinstance(cb, ValidationSummaryCallback))

        class FirstEpochCost(keras.callbacks.Callback):
            """Background CPU of epoch 1 alone (imports, first figures): drains once, after it."""

            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    writers.drain()
                    first_epoch_cpu.append(writers.busy_cpu_seconds)

        callbacks.append(FirstEpochCost())
    else:
        callbacks = [keras.callbacks.TensorBoard(str(run_dir), histogram_freq=1)]
    start = time.perf_counter()
    model.fit(x[:args.train], y[:args.train], validation_data=(x[args.train:], y[args.train:]),
              batch_size=256, epochs=args.epochs, verbose=0,
              callbacks=[validation_timer(val_seconds), *callbacks])
    if args.way.startswith("suite"):
        close_suite(callbacks)
    fit_seconds = time.perf_counter() - start
    out = {"val_s": val_seconds, "fit_s": fit_seconds,
           "event_bytes": event_bytes(run_dir), "monitor_event_bytes": event_bytes(run_dir / "monitor")}
    if args.way.startswith("suite"):
        out |= {"training_thread_s": seconds_on_training_thread(callbacks),
                "background_cpu_s": writers.busy_cpu_seconds, "background_wall_s": writers.busy_seconds,
                "first_epoch_background_cpu_s": first_epoch_cpu[0] if first_epoch_cpu else None,
                "failed": writers.failed}
    return out


def run_worker(num_classes: int, way: str, args) -> dict:
    return run_in_worker(__file__, ["--way", way, "--num-classes", str(num_classes),
                                    "--train", str(args.train), "--val", str(args.val),
                                    "--epochs", str(args.epochs)],
                         f"{way} C={num_classes}")


def summarise(results: dict, epochs: int) -> list[dict]:
    rows = []
    for c, ways in results.items():
        def med(way, key, fn=lambda v: v, ways=ways):
            return statistics.median(fn(r[key]) for r in ways[way])

        def val(r):  # median validation pass over epochs 2..E (the first one traces)
            return statistics.median(r[1:] if len(r) > 1 else r)

        row = {"classes": int(c),
               "val_plain_s": med("plain", "val_s", val), "val_suite_s": med("suite", "val_s", val),
               "fit_plain_s": med("plain", "fit_s"), "fit_suite_s": med("suite", "fit_s"),
               "thread_ms_per_epoch": 1000 * med("suite", "training_thread_s") / epochs,
               "bg_cpu_s_per_epoch": med("suite", "background_cpu_s") / epochs,
               "bg_cpu_s_first_epoch": med("suite", "first_epoch_background_cpu_s"),
               "bg_cpu_s_later_epochs": statistics.median(
                   (r["background_cpu_s"] - r["first_epoch_background_cpu_s"]) / max(epochs - 1, 1)
                   for r in ways["suite"]),
               "event_mb_per_epoch": med("suite", "event_bytes") / epochs / 1e6,
               "plain_event_mb_per_epoch": med("plain", "event_bytes") / epochs / 1e6,
               "monitor_mb_per_epoch": med("suite", "monitor_event_bytes") / epochs / 1e6,
               "failed": [r.get("failed") for r in ways["suite"] if r.get("failed")]}
        if "suite-no-mistakes" in ways:
            row["val_suite_no_mistakes_s"] = med("suite-no-mistakes", "val_s", val)
            row["mistakes_val_ratio"] = row["val_suite_s"] / row["val_suite_no_mistakes_s"]
        row["val_ratio"] = row["val_suite_s"] / row["val_plain_s"]
        row["fit_ratio"] = row["fit_suite_s"] / row["fit_plain_s"]
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| classes | val pass plain s | val pass suite s | ratio | fit plain s | fit suite s | ratio "
             "| training thread ms/epoch | background CPU s/epoch: all (first; later) "
             "| event MB/epoch (plain) | suite `monitor/` MB/epoch |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['classes']} | {r['val_plain_s']:.2f} | {r['val_suite_s']:.2f} | {r['val_ratio']:.3f} "
            f"| {r['fit_plain_s']:.1f} | {r['fit_suite_s']:.1f} | {r['fit_ratio']:.3f} "
            f"| {r['thread_ms_per_epoch']:.1f} | {r['bg_cpu_s_per_epoch']:.3f} "
            f"({r['bg_cpu_s_first_epoch']:.2f}; {r['bg_cpu_s_later_epochs']:.3f}) "
            f"| {r['event_mb_per_epoch']:.2f} ({r['plain_event_mb_per_epoch']:.2f}) "
            f"| {r['monitor_mb_per_epoch']:.3f} |")
    if any("mistakes_val_ratio" in r for r in rows):
        lines += ["", "| classes | val pass suite without mistakes s | with mistakes (M=64) s | ratio |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {r['classes']} | {r['val_suite_no_mistakes_s']:.2f} | {r['val_suite_s']:.2f} "
                  f"| {r['mistakes_val_ratio']:.3f} |" for r in rows if "mistakes_val_ratio" in r]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--val", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--ways", default="plain,suite",
                   help="comma-separated, run interleaved: plain, suite, suite-no-mistakes")
    p.add_argument("--out", help="write the raw numbers as JSON here (and the table beside it as .md)")
    add_worker_arguments(p)
    args = p.parse_args(argv)
    if served_as_worker(args, worker):
        return
    ways = args.ways.split(",")
    results: dict[int, dict[str, list]] = {c: {w: [] for w in ways} for c in args.classes}
    for c in args.classes:
        for r in range(args.repeats):
            for way in ways:
                start = time.time()
                results[c][way].append(run_worker(c, way, args))
                print(f"C={c} repeat {r + 1} {way}: {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    rows = summarise(results, args.epochs)
    table = markdown(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "targets": TARGETS, "rows": rows,
                                              "raw": results}, indent=1))
        Path(args.out).with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
