"""What the streamed capture costs inside `model.evaluate`, with and without the mistakes.

The capture includes everything it streams: confusion counts, PR histograms, calibration bins,
sample slots (and, with mistakes=64, the most confident mistakes). Beside wall time, the process's
CPU seconds per evaluate (all its threads; other processes disturb their medians less).

One process, the `dropout` layer stack with a C-unit head, 10,000 random 32x32x3 images,
batch 256. Three copies of the model (same weights): plain, with the capture and
`mistakes=0`, with the capture and `mistakes=64` (the default). Each is traced once, then
their evaluates are interleaved (plain, no mistakes, mistakes, plain, ...) `--repeats`
times; medians and minima, and ratios of the minima, per C (this machine has slow phases of
tens of seconds that only ever add time, so the minimum is the steadier estimate of cost).
Only the evaluate pass, none of the rendering.

    .venv/bin/python bench/capture.py --repeats 15 --out bench/results/capture.json   # ~4 min
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import keras
    import numpy as np

    from monitor.capture import EvaluationCapture
    from monitor.models import build, compile_model

    rows = []
    for c in args.classes:
        rng = np.random.default_rng(0)
        x = rng.random((args.images, 32, 32, 3), dtype=np.float32)
        y = keras.utils.to_categorical(rng.integers(0, c, args.images), c).astype(np.float32)
        models = {}
        for way, mistakes in (("plain", None), ("capture, no mistakes", 0), ("capture, mistakes=64", 64)):
            keras.utils.set_random_seed(0)
            model = build("dropout", (32, 32, 3), c)
            compile_model(model, "dropout", 0.001)
            if mistakes is not None:
                capture = EvaluationCapture(c, mistakes=mistakes)
                capture.attach(model)
            model.evaluate(x[:512], y[:512], batch_size=256, verbose=0)  # trace
            models[way] = model
        times = {way: [] for way in models}
        cpu = {way: [] for way in models}
        for _ in range(args.repeats):
            for way, model in models.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                model.evaluate(x, y, batch_size=256, verbose=0)
                times[way].append(time.perf_counter() - start)
                cpu[way].append(time.process_time() - start_cpu)
        med = {way: statistics.median(t) for way, t in times.items()}
        low = {way: min(t) for way, t in times.items()}
        row = {"classes": c, **{f"{way} s": m for way, m in med.items()},
               **{f"{way} min s": m for way, m in low.items()},
               "capture / plain": low["capture, mistakes=64"] / low["plain"],
               "mistakes / no mistakes": low["capture, mistakes=64"] / low["capture, no mistakes"],
               "cpu capture / plain": (statistics.median(cpu["capture, mistakes=64"])
                                       / statistics.median(cpu["plain"])),
               "raw": times, "raw cpu": cpu}
        rows.append(row)
        print(f"C={c}: " + ", ".join(f"{w} {m:.2f} s" for w, m in med.items()), file=sys.stderr, flush=True)
    lines = ["| classes | evaluate plain s: min (median) | capture, no mistakes | capture, mistakes=64 "
             "| capture / plain (minima) | mistakes / no mistakes (minima) "
             "| capture / plain (CPU s, medians) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['classes']} | {r['plain min s']:.3f} ({r['plain s']:.2f}) "
              f"| {r['capture, no mistakes min s']:.3f} ({r['capture, no mistakes s']:.2f}) "
              f"| {r['capture, mistakes=64 min s']:.3f} ({r['capture, mistakes=64 s']:.2f}) "
              f"| {r['capture / plain']:.3f} | {r['mistakes / no mistakes']:.3f} "
              f"| {r['cpu capture / plain']:.3f} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=1))
        args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
