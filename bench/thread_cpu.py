"""Where the training process's CPU goes in a short-epoch fit: CPU seconds by thread, with and
without the suite.

The short-epoch benchmark (`bench/short_epochs.py`) found the training process using about 1.2x
the CPU of a plain `fit` with the suite attached (its drawing child apart). This splits that CPU
by thread: a sampler thread in the worker reads `/proc/self/task/*/stat` every 50 ms and keeps
each thread's last CPU reading (so threads that end during the fit, such as the traces ahead,
are counted), naming Python's threads by `threading.Thread.name` and the others (TensorFlow's
pools) by their kernel name. Each (classes, way, repeat) runs in a fresh process, interleaved.

    .venv/bin/python bench/thread_cpu.py --classes 10 --repeats 3
    .venv/bin/python bench/thread_cpu.py --classes 10 --repeats 5 --baseline-rev 2632b59   # before/after
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import (  # noqa: E402
    add_worker_arguments,
    baseline_tree,
    run_in_worker,
    served_as_worker,
    tf_data_autotune_off,
    use_suite_of,
)

WAYS = ("none", "suite")


class ThreadCpuSampler:
    """CPU seconds by thread of this process, sampled every `interval` s while in use."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self.names[thread.native_id] = thread.name
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            self.cpu[int(tid)] = (int(fields[11]) + int(fields[12])) / self._tick
            self.names.setdefault(int(tid), f"[{comm}]")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self._start = dict(self.cpu)
        self._thread = threading.Thread(target=self._run, name="thread-cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def by_name(self) -> dict[str, float]:
        """CPU seconds while in use, summed by thread name (TensorFlow's pool threads by kernel name,
        numbers stripped)."""
        out: dict[str, float] = {}
        for tid, cpu in self.cpu.items():
            name = self.names[tid].rstrip("0123456789/-_ ")
            if tid == threading.main_thread().native_id:
                name = "main (training loop)"
            out[name] = out.get(name, 0.0) + cpu - self._start.get(tid, 0.0)
        return {k: round(v, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0.005}


def worker(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    use_suite_of(args.suite_root)  # way suite@REV: that tree's suite
    tf_data_autotune_off()
    from bench.timing import random_classifier
    from callbacks import close_suite, monitoring_callbacks

    c = args.num_classes
    x, y, model = random_classifier("simple", c, args.train + args.val)
    callbacks = []
    if args.way == "suite":
        callbacks = monitoring_callbacks([f"class_{i:04d}" for i in range(c)], args.run_dir)
    with ThreadCpuSampler() as sampler:
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(x[:args.train], y[:args.train], validation_data=(x[args.train:], y[args.train:]),
                  batch_size=32, epochs=args.epochs, verbose=0, callbacks=callbacks)
        if callbacks:
            close_suite(callbacks)
        fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    return {"fit_s": fit_s, "cpu_s": cpu_s, "threads": sampler.by_name()}


def table(runs: dict[str, list[dict]]) -> str:
    """Medians over the repeats, one row per figure or thread name, one column per way."""
    ways = list(runs)

    def row(label, value) -> str:
        return f"| {label} | " + " | ".join(f"{statistics.median(value(r) for r in runs[w]):.2f}"
                                           for w in ways) + " |"

    lines = [f"| CPU s per fit (medians) | {' | '.join(ways)} |", "|---|" + "---:|" * len(ways),
             row("whole fit, wall s", lambda r: r["fit_s"]),
             row("training process CPU s", lambda r: r["cpu_s"])]
    names = sorted({n for w in ways for r in runs[w] for n in r["threads"]})
    lines += [row(n, lambda r, n=n: r["threads"].get(n, 0.0)) for n in names]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[10])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=4000)
    parser.add_argument("--baseline-rev", help="also run the suite of this commit (suite@REV), interleaved")
    parser.add_argument("--suite-root", help=argparse.SUPPRESS)
    add_worker_arguments(parser)
    args = parser.parse_args(argv)
    if served_as_worker(args, worker):
        return
    ways = [*WAYS, *([f"suite@{args.baseline_rev}"] if args.baseline_rev else [])]
    with baseline_tree(args.baseline_rev) as baseline:
        for c in args.classes:
            runs: dict[str, list[dict]] = {w: [] for w in ways}
            for r in range(args.repeats):
                for way in ways:
                    root = ["--suite-root", str(baseline)] if "@" in way else []
                    runs[way].append(run_in_worker(__file__, [
                        "--way", way.split("@")[0], "--num-classes", str(c), "--epochs", str(args.epochs),
                        "--train", str(args.train), "--val", str(args.val), *root], f"{way} {c} #{r}"))
            print(f"\n{c} classes, {args.repeats} repeats, {args.epochs} epochs\n\n{table(runs)}", flush=True)


if __name__ == "__main__":
    main()
