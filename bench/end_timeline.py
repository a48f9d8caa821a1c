"""Where the wait at the end of a short fit goes: a timeline from the last validation pass's end.

One 3-epoch fit of the short-epoch benchmark's model (the `simple` recipe's layer stack, C-unit
head, random 32x32x3 images, 4,000 train and 4,000 validation, batch 32) with the suite, then
`close_suite`. Printed, from the end of the last validation pass: every suite hook on the training
thread, every piece of the writer's work (start, end, its thread's CPU), every drawing asked of the
drawing process (start, end, which thread asked) and the CPU the child reported for it. What it
showed at stop 38: the last epoch's pictures took 0.37 CPU s of the child at 10 classes and 0.71 at
1,000, on two lanes, and the wait at the end was 0.26-0.30 s and 0.47 s.

    .venv/bin/python bench/end_timeline.py --classes 10
    .venv/bin/python bench/end_timeline.py --classes 1000 --baseline-rev ae4bc3d   # that commit's suite
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import baseline_tree, use_suite_of  # noqa: E402  (needs ROOT on sys.path; no Keras)


def _instrument(callbacks, writers, log: list, now) -> None:
    """Log the suite's hooks, the writer's pieces and the drawings into `log` as they run."""
    submit, call, count = writers.submit, writers.drawing.call, writers.drawing._count

    def timed_submit(subdir, work, what="writing summaries", **kwargs):
        def run():
            start, cpu = now(), time.thread_time()
            try:
                work()
            finally:
                log.append((start, now(), f"work {what} (thread CPU {time.thread_time() - cpu:.3f} s)",
                            threading.current_thread().name))
        return submit(subdir, run, what, **kwargs)

    def timed_call(key, factory, *args):
        start = now()
        try:
            return call(key, factory, *args)
        finally:
            log.append((start, now(), f"draw {getattr(factory, '__name__', factory)}",
                        threading.current_thread().name))

    def counted(name, cpu, warm_up_cpu=0.0, request=False):
        at = now()
        log.append((at, at, f"  the child's CPU for {name}: {cpu:.3f} s", threading.current_thread().name))
        return count(name, cpu, warm_up_cpu, request)

    writers.submit, writers.drawing.call, writers.drawing._count = timed_submit, timed_call, counted
    for callback in callbacks:
        for hook in ("on_epoch_end", "on_train_end"):
            original, name = getattr(callback, hook), f"hook {type(callback).__name__}.{hook}"

            def timed(*args, _original=original, _name=name, **kwargs):
                start = now()
                try:
                    return _original(*args, **kwargs)
                finally:
                    log.append((start, now(), _name, "training thread"))
            setattr(callback, hook, timed)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--baseline-rev", help="time the suite of this commit instead of this tree's")
    args = p.parse_args(argv)
    with baseline_tree(args.baseline_rev) as baseline:
        timeline(args.classes, baseline)


def timeline(c: int, suite_root: Path | None) -> None:
    """One fit with the suite (`suite_root`'s, else this tree's), its end printed as a timeline."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    use_suite_of(str(suite_root) if suite_root else None)
    from bench.timing import random_classifier, tf_data_autotune_off, validation_timer
    tf_data_autotune_off()
    from callbacks import close_suite, monitoring_callbacks
    from callbacks.base import ValidationSummaryCallback

    x, y, model = random_classifier("simple", c, 8000)
    callbacks = monitoring_callbacks([f"class_{i:04d}" for i in range(c)], tempfile.mkdtemp())
    writers = next(cb.writers for cb in callbacks if isinstance(cb, ValidationSummaryCallback))
    log: list = []
    origin = time.perf_counter()
    _instrument(callbacks, writers, log, lambda: time.perf_counter() - origin)
    val_s, train_s, val_ends = [], [], []
    model.fit(x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), batch_size=32, epochs=3, verbose=0,
              callbacks=[validation_timer(val_s, train_s, val_ends), *callbacks])
    close_suite(callbacks)
    done, last = time.perf_counter() - origin, val_ends[-1] - origin
    print(f"{c} classes: the wait at the end (the last validation pass's end to close_suite's) "
          f"{done - last:.3f} s")
    if not any(what.startswith("draw ") for _, _, what, _ in log):  # the hooks above reach private methods
        print("no drawing was timed: has DrawingProcess.call or ._count changed?", file=sys.stderr)
    print("start s, end s, seconds, thread, what (times from the last validation pass's end)")
    for start, end, what, thread in sorted(log):
        if end > last - 0.05 and (end - start > 0.0005 or what.startswith("  ")):
            print(f"{start - last:+.3f} {end - last:+.3f} {end - start:.3f} {thread[:16]:16s} {what}")


if __name__ == "__main__":
    main()
