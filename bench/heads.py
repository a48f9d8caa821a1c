"""What the streamed capture costs inside `model.evaluate`, for each kind of classifier head.

One process, the `dropout` layer stack (the reference recipe) with each head in turn:
- `single`: Dense(10, softmax), sparse integer labels;
- `binary`: Dense(1, sigmoid), 0/1 labels; `binary-logits`: Dense(1) with a from_logits loss;
- `multi-label`: Dense(10, sigmoid), multi-hot labels (two labels set per image);
- `custom-step`: the single head in a subclassed model whose own `test_step` computes y_pred
  and hands it to `compute_loss` (the Keras guide's pattern);
- `two-outputs`: the single head beside an auxiliary Dense(2) head, read through `output=`.
For each, two copies of the model with the same weights, plain and with the capture (all its
defaults: PR histograms, 18 sample slots, 64 mistakes), traced once, then their evaluates are
interleaved `--repeats` times over `--images` random 32x32x3 images, batch 256. Medians and
minima, and capture / plain of the minima (this machine has slow phases that only ever add time,
so the minimum is the steadier estimate); and the process's CPU seconds per evaluate (all its
threads), whose medians other processes on the machine disturb less than wall time. Only the
evaluate pass, none of the rendering.

    .venv/bin/python bench/heads.py --repeats 9 --out bench/results/heads.json   # ~5 min
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

HEADS = ("single", "binary", "binary-logits", "multi-label", "custom-step", "two-outputs")


def head_model(head: str):
    """(model, number of class names, output=) of `head`, compiled, seeded alike."""
    import keras

    from monitor.models import build

    keras.utils.set_random_seed(0)
    base = build("dropout", (32, 32, 3), 10)
    features = base.layers[-2].output
    units, activation, loss = {
        "binary": (1, "sigmoid", "binary_crossentropy"),
        "binary-logits": (1, None, keras.losses.BinaryCrossentropy(from_logits=True)),
        "multi-label": (10, "sigmoid", "binary_crossentropy"),
    }.get(head, (10, "softmax", "sparse_categorical_crossentropy"))
    out = keras.layers.Dense(units, activation=activation, name="classes")(features)
    if head == "two-outputs":
        aux = keras.layers.Dense(2, activation="softmax", name="aux")(features)
        model = keras.Model(base.inputs, [out, aux])
        model.compile("rmsprop", [loss, "sparse_categorical_crossentropy"])
        return model, 10, "classes"
    cls = _custom_step_model() if head == "custom-step" else keras.Model
    model = cls(base.inputs, out)
    model.compile("rmsprop", loss)
    return model, 2 if units == 1 else 10, None


def _custom_step_model():
    import keras

    class CustomStep(keras.Model):
        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                metric.update_state(loss) if metric.name == "loss" else metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    return CustomStep


def head_data(head: str, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, n)
    if head.startswith("binary"):
        return x, (labels % 2).astype(np.float32)
    if head == "multi-label":
        y = np.zeros((n, 10), np.float32)
        y[np.arange(n), labels] = 1
        y[np.arange(n), (labels + 1 + rng.integers(0, 9, n)) % 10] = 1
        return x, y
    if head == "two-outputs":
        return x, (labels, labels % 2)
    return x, labels


def measure(head: str, images: int, repeats: int) -> dict:
    from monitor.capture import EvaluationCapture

    x, y = head_data(head, images)
    models = {}
    for way in ("plain", "capture"):
        model, classes, output = head_model(head)
        if way == "capture":
            capture = EvaluationCapture(classes, output=output)
            capture.attach(model)
        model.evaluate(x[:512], _first(y, 512), batch_size=256, verbose=0)  # trace
        models[way] = model
    times = {way: [] for way in models}
    cpu = {way: [] for way in models}
    for _ in range(repeats):
        for way, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            model.evaluate(x, y, batch_size=256, verbose=0)
            times[way].append(time.perf_counter() - start)
            cpu[way].append(time.process_time() - start_cpu)
    if capture.unreadable or capture.read().count != 512 + repeats * images:  # it counted every image
        raise SystemExit(f"{head}: the capture did not read the head ({capture.unreadable})")
    low = {way: min(t) for way, t in times.items()}
    return {"head": head, **{f"{w} s": statistics.median(t) for w, t in times.items()},
            **{f"{w} min s": m for w, m in low.items()}, "capture / plain": low["capture"] / low["plain"],
            **{f"{w} cpu s": statistics.median(t) for w, t in cpu.items()},
            "cpu capture / plain": statistics.median(cpu["capture"]) / statistics.median(cpu["plain"]),
            "raw": times, "raw cpu": cpu}


def _first(y, n):
    return tuple(part[:n] for part in y) if isinstance(y, tuple) else y[:n]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = []
    for head in args.heads:
        rows.append(measure(head, args.images, args.repeats))
        print(f"{head}: {rows[-1]['capture / plain']:.3f}", file=sys.stderr, flush=True)
    lines = ["| head | evaluate plain s: min (median) | with the capture: min (median) "
             "| capture / plain (wall minima) | CPU s plain / capture (medians) | capture / plain (CPU) |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['head']} | {r['plain min s']:.3f} ({r['plain s']:.2f}) | {r['capture min s']:.3f} "
              f"({r['capture s']:.2f}) | {r['capture / plain']:.3f} | {r['plain cpu s']:.2f} / "
              f"{r['capture cpu s']:.2f} | {r['cpu capture / plain']:.3f} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=1))
        args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
