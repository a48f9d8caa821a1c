"""What CPU work in another process costs training on this machine, by scheduling class.

A plain `fit` (the `simple` recipe's layer stack, 10 classes, random 32x32x3 images, 4,000 train
and 4,000 validation, batch 32) runs `--epochs` epochs while a child process, started beside it,
works (pure Python, and with `--memory` numpy passes over 30 MB too, as drawing does) during the
training phase of every odd epoch and sleeps otherwise. The training phases of the even epochs
(the first left out: it traces) against the odd ones' say what that work costs training:
the child in Linux's SCHED_IDLE class, niced by 10 (the suite's drawing process), niced by 19,
or neither. Epochs alternate, so the machine's drift touches both alike. Keras' input pipeline runs
with tf.data's autotuning off (`bench.timing.tf_data_autotune_off`: its random multi-second waits
at epoch starts fell on busy and idle epochs alike, and buried the difference);
`--tf-data-autotune on` keeps it.

    .venv/bin/python bench/background_cost.py --epochs 13 --modes idle nice nice19 normal   # ~3 min
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NICENESS = {"nice": 10, "nice19": 19}
LABELS = {"idle": "SCHED_IDLE", "nice": "niced by 10", "nice19": "niced by 19", "normal": "normal priority"}


def work(mode: str, memory: bool) -> None:
    """The child: busy while told "on" (a line on stdin), idle while "off"; exits at end of input."""
    if mode == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif mode in NICENESS:
        os.nice(NICENESS[mode])
    import numpy as np

    pixels = np.random.default_rng(0).random((1200, 1600, 4)).astype(np.float32)
    busy = False
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0 if busy else None)
        if ready:
            line = sys.stdin.readline()
            if not line:
                return
            busy = line.strip() == "on"
        if busy:
            total = 0
            for i in range(20_000):
                total += i * i
            if memory:
                float((pixels * 1.5).sum())


def measure(mode: str, epochs: int, memory: bool, autotune: bool = False) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    import keras

    from bench.timing import random_classifier, tf_data_autotune_off

    if not autotune:
        tf_data_autotune_off()

    x, y, model = random_classifier("simple", 10, 8000)
    child = subprocess.Popen([sys.executable, __file__, "--work", mode, *(["--memory"] if memory else [])],
                             stdin=subprocess.PIPE, text=True)
    phases: dict[bool, list[float]] = {True: [], False: []}

    class Alternate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.busy = epoch % 2 == 1
            child.stdin.write("on\n" if self.busy else "off\n")
            child.stdin.flush()
            self.start = time.perf_counter()

        def on_test_begin(self, logs=None):
            phases[self.busy].append(time.perf_counter() - self.start)
            child.stdin.write("off\n")
            child.stdin.flush()

    try:
        model.fit(x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), batch_size=32, epochs=epochs,
                  verbose=0, callbacks=[Alternate()])
    finally:
        child.stdin.close()
        child.wait()
    quiet, busy = phases[False][1:], phases[True]  # the first epoch traces
    pairs = [b / q for q, b in zip(quiet, busy, strict=False)]
    return {"mode": mode, "memory": memory, "quiet_s": quiet, "busy_s": busy,
            "ratio": statistics.median(busy) / statistics.median(quiet), "pairs": pairs}


def main(argv=None) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.timing import add_tf_data_autotune_argument

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--modes", nargs="+", default=["idle", "nice", "nice19", "normal"], choices=list(LABELS))
    add_tf_data_autotune_argument(p)
    p.add_argument("--memory", action="store_true", help="the child also streams through 30 MB of numpy")
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.work:
        work(args.work, args.memory)
        return
    print("| child | training phase, child idle s | child busy s | busy / idle (per pair) |")
    print("|---|---|---|---|")
    for mode in args.modes:
        code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); "
                f"from bench.background_cost import measure; "
                f"print(json.dumps(measure({mode!r}, {args.epochs}, {args.memory}, "
                f"{args.tf_data_autotune == 'on'})))")
        done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        label = LABELS[mode]
        quiet = ", ".join(f"{v:.2f}" for v in r["quiet_s"])
        print(f"| {label}{' + memory' if args.memory else ''} | {quiet} "
              f"| {', '.join(f'{v:.2f}' for v in r['busy_s'])} | **{r['ratio']:.2f}** "
              f"({', '.join(f'{v:.2f}' for v in r['pairs'])}) |", flush=True)


if __name__ == "__main__":
    main()
