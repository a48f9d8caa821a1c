"""Where the training thread's GIL waits fall in a short fit with the suite, and which threads ran
meanwhile.

The fit of `bench/short_epochs.py` (the `simple` recipe's layer stack, C classes, random 32x32x3
images, 4,000 train and 4,000 validation, batch 32, 3 epochs), the suite with its defaults, each
fit in its own process. A sampler process reads the training thread's state about every millisecond
as `bench/gil_wait.py` does; at each sample in which the thread sleeps on the GIL it also notes the
process's other threads that are running (state R), named by the Python thread they are. Prints the
waits per phase of the fit (ms, medians over the repeats) and, of the wait samples, the share in
which each thread was running (a sample may have several: their shares add up to more than 100%).

    .venv/bin/python bench/gil_holders.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gil_wait import FUTEX, allow_sampling, gil_state_address, wait_range, waits_on_gil  # noqa: E402
from bench.timing import add_worker_arguments, run_in_worker, served_as_worker  # noqa: E402


def sample(pid: int, tid: int, lo: int, hi: int, period_s: float) -> None:
    """The sampler process: until SIGTERM, each sample of `tid` sleeping in futex on [lo, hi) is
    kept with its time and the other threads of `pid` running then."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fd = os.open(f"/proc/{pid}/task/{tid}/syscall", os.O_RDONLY)
    print("ready", flush=True)
    samples, waits, start = 0, [], time.perf_counter()
    while not stop.is_set():
        samples += 1
        if waits_on_gil(os.pread(fd, 128, 0), lo, hi):
            waits.append((time.time(), _running(pid, tid)))
        time.sleep(period_s)
    elapsed = time.perf_counter() - start
    print(json.dumps({"samples": samples, "elapsed_s": elapsed, "waits": waits}), flush=True)


def _running(pid: int, tid: int) -> list[int]:
    """The threads of `pid` other than `tid` in state R (running or runnable)."""
    running = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(task) != tid and stat[stat.rindex(")") + 2] == "R":
            running.append(int(task))
    return running


def worker(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from bench.timing import random_classifier, tf_data_autotune_off
    from callbacks import close_suite, monitoring_callbacks

    tf_data_autotune_off()
    names: dict[int, str] = {}
    run = threading.Thread.run

    def named_run(thread):  # the OS thread id of every Python thread, by its name
        names[threading.get_native_id()] = thread.name.rstrip("0123456789-")
        run(thread)

    threading.Thread.run = named_run
    x, y, model = random_classifier("simple", args.num_classes, 8000)
    suite = monitoring_callbacks([f"class_{i:04d}" for i in range(args.num_classes)], args.run_dir)
    marks: list[tuple[float, str]] = []

    class Phases(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            marks.append((time.time(), f"epoch {self.epoch} training"))

        def on_test_begin(self, logs=None):
            marks.append((time.time(), f"epoch {self.epoch} validation"))

        def on_test_end(self, logs=None):
            marks.append((time.time(), f"epoch {self.epoch} end (hooks, the writer's work)"))

    state = gil_state_address()
    if state is None or FUTEX is None:
        raise SystemExit("the GIL's state was not found (Linux, CPython 3.11-3.12 only)")
    allow_sampling()
    lo, hi = wait_range(state)
    sampler = subprocess.Popen([sys.executable, __file__, "--sample", str(os.getpid()),
                                str(threading.get_native_id()), str(lo), str(hi)],
                               stdout=subprocess.PIPE, text=True)
    sampler.stdout.readline()
    model.fit(x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), batch_size=32, epochs=3,
              verbose=0, callbacks=[Phases(), *suite])
    close_suite(suite)
    sampler.send_signal(signal.SIGTERM)
    out = json.loads(sampler.stdout.readline())
    sampler.wait()
    per_sample_ms = 1000 * out["elapsed_s"] / max(1, out["samples"])
    phases, holders = Counter(), Counter()
    for at, running in out["waits"]:
        phases[next((name for when, name in reversed(marks) if when <= at), "train begin")] += per_sample_ms
        holders.update({names.get(t, "other (TensorFlow's own)") for t in running} or {"none running"})
    return {"wait_ms": per_sample_ms * len(out["waits"]), "phases_ms": dict(phases),
            "holders": dict(holders), "wait_samples": len(out["waits"])}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sample", nargs=4, type=int, help=argparse.SUPPRESS)  # the sampler process
    add_worker_arguments(p)
    args = p.parse_args(argv)
    if args.sample:
        sample(*args.sample, period_s=0.001)
        return
    if served_as_worker(args, worker):
        return
    runs = []
    for r in range(args.repeats):
        runs.append(run_in_worker(__file__, ["--way", "suite", "--num-classes", str(args.classes)],
                                  f"repeat {r + 1}"))
        print(f"repeat {r + 1}: GIL waits {runs[-1]['wait_ms']:.0f} ms", file=sys.stderr, flush=True)
    each = ", ".join(f"{r['wait_ms']:.0f}" for r in runs)
    print(f"{args.classes} classes, {args.repeats} fits: GIL waits per fit, ms: median "
          f"{statistics.median(r['wait_ms'] for r in runs):.0f} ({each})")
    print("\n| phase | waits, ms (median) |\n|---|---:|")
    for phase in sorted({p for r in runs for p in r["phases_ms"]}):
        print(f"| {phase} | {statistics.median(r['phases_ms'].get(phase, 0.0) for r in runs):.1f} |")
    total = sum(r["wait_samples"] for r in runs)
    print("\n| thread running while the training thread waited | share of the wait samples |\n|---|---:|")
    for name, count in sum((Counter(r["holders"]) for r in runs), Counter()).most_common():
        print(f"| {name} | {100 * count / max(1, total):.0f}% |")


if __name__ == "__main__":
    main()
