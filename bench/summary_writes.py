"""One summary written: TensorFlow's `tf.summary` writer against the suite's `EventFileWriter`,
side by side, in CPU milliseconds of the calling thread per call (the suite's writer thread holds
the GIL for about that long; the training thread needs it between steps).

Each kind the suite writes every epoch: a scalar, a text, a PNG image (a 10-class confusion
heatmap), a PR curve, the dashboard's confusion counts; the same `monitor.summaries` functions,
into one writer or the other (`tests/test_event_writer.py`: TensorBoard reads back the same).

    .venv/bin/python bench/summary_writes.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(calls: int = 300) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from monitor import summaries
    from monitor.dashboard import summary as dashboard_summary
    from monitor.render import confusion_heatmap
    from monitor.runfiles.event_files import EventFileWriter

    names = [f"class_{i}" for i in range(10)]
    cm = np.random.default_rng(0).integers(0, 50, (10, 10))
    png = confusion_heatmap(cm, names, "epoch 1")
    counts = {k: np.linspace(1, 50, 33) for k in ("tp", "fp", "tn", "fn", "precision", "recall")}
    kinds = {
        "scalar": lambda: summaries.scalars({"per_class/f1/cat": 0.5}, step=1),
        "text": lambda: summaries.text("notes/epochs_001-010", "| a | b |\n|---|---|\n| 1 | 2 |", step=1),
        f"image ({len(png) // 1000} KB PNG)": lambda: summaries.png_image("confusion/epochs_001-010", png,
                                                                           step=1),
        "PR curve (33 thresholds)": lambda: summaries.pr_curve("pr_curves/cat", counts, step=1),
        "dashboard confusion counts": lambda: dashboard_summary.confusion_counts(cm, names, step=1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        writers = {"tf.summary": tf.summary.create_file_writer(os.path.join(tmp, "tf")),
                   "EventFileWriter": EventFileWriter(os.path.join(tmp, "ours"))}
        print("| summary | " + " | ".join(f"{name} ms" for name in writers) + " | ratio |")
        print("|---|---:|---:|---:|")
        for kind, write in kinds.items():
            cells = []
            for writer in writers.values():
                with writer.as_default():
                    write()  # once first: imports, first-call caches
                    start = time.thread_time()
                    for _ in range(calls):
                        write()
                    cells.append((time.thread_time() - start) / calls * 1e3)
                writer.flush()
            print(f"| {kind} | {cells[0]:.3f} | {cells[1]:.3f} | {cells[0] / cells[1]:.0f}x |")
        for writer in writers.values():
            writer.close()


if __name__ == "__main__":
    main()
