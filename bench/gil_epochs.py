"""The training thread's GIL waits epoch by epoch, with the suite: where in a short fit they are.

A small CNN (the `simple` recipe's layer stack, C classes, random 32x32x3 images, 4,000 train and
4,000 validation, batch 32), the suite with its defaults, 3 epochs; a `bench/gil_wait.py` sampler
around each epoch (its start to its end, the validation pass included) and one around the whole
fit (`close_suite` included). Two ways, interleaved, each fit in its own process:

- now: the suite as it is (Grad-CAM's first-epoch tracing thread waits for training's first step);
- trace-at-start: that thread tracing as the fit starts, beside the training thread tracing its own
  step function (as before).

Prints, per way, the whole fit's GIL wait and each epoch's (ms, medians over the repeats, min-max).

    .venv/bin/python bench/gil_epochs.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gil_wait import GilWaitSampler  # noqa: E402  (needs ROOT on sys.path; no Keras)
from bench.timing import add_worker_arguments, run_in_worker, served_as_worker  # noqa: E402

WAYS = ("now", "trace-at-start")


def worker(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from bench.timing import random_classifier
    from callbacks import close_suite, explanations, monitoring_callbacks

    if args.way == "trace-at-start":
        explanations.wait_for_first_step = lambda model: None
    x, y, model = random_classifier("simple", args.num_classes, 8000)
    suite = monitoring_callbacks([f"class_{i:04d}" for i in range(args.num_classes)], args.run_dir)
    epochs: list[float] = []

    class PerEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.sampler = GilWaitSampler().__enter__()

        def on_epoch_end(self, epoch, logs=None):
            self.sampler.__exit__(None, None, None)
            epochs.append(self.sampler.wait_s)

    with GilWaitSampler() as whole:
        start = time.perf_counter()
        model.fit(x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), batch_size=32, epochs=3,
                  verbose=0, callbacks=[PerEpoch(), *suite])
        close_suite(suite)
        fit_s = time.perf_counter() - start
    return {"fit_s": fit_s, "whole_s": whole.wait_s, "epochs_s": epochs}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    add_worker_arguments(p)
    args = p.parse_args(argv)
    if served_as_worker(args, worker):
        return
    runs: dict[str, list[dict]] = {w: [] for w in WAYS}
    for r in range(args.repeats):
        for way in WAYS:
            runs[way].append(run_in_worker(__file__, ["--way", way, "--num-classes", str(args.classes)],
                                           f"{way} repeat {r + 1}"))
            print(f"repeat {r + 1} {way}: fit {runs[way][-1]['fit_s']:.2f} s", file=sys.stderr, flush=True)

    def cell(values: list[float]) -> str:
        ms = [1000 * v for v in values]
        return f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})"

    print(f"| way ({args.classes} classes, {args.repeats} repeats) | whole fit ms | epoch 1 ms | epoch 2 ms "
          "| epoch 3 ms |")
    print("|---|---:|---:|---:|---:|")
    for way, results in runs.items():
        per_epoch = [cell([r["epochs_s"][e] for r in results]) for e in range(3)]
        print(f"| {way} | {cell([r['whole_s'] for r in results])} | " + " | ".join(per_epoch) + " |")


if __name__ == "__main__":
    main()
