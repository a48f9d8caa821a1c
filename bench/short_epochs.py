"""What the suite costs when epochs last seconds: plain `fit` against `fit` with the suite.

Each (classes, way, repeat) runs in its own worker process: a small CNN (the `simple` recipe's
layer stack, C-unit softmax head) on random 32x32x3 images (4,000 train, 4,000 validation by
default), the recipe's batch size (32), 3 epochs. The ways, interleaved (none, keras-tb, suite,
none, ...):

- none: `fit` with no callbacks (the issue's "plain");
- keras-tb: `fit` with Keras' own `TensorBoard(histogram_freq=1)`, for reference;
- suite: `fit` with `monitoring_callbacks(...)` (every part on, its TensorBoard callback with
  histograms included, the default picture budget), then `close_suite` inside the timed fit
  (every image on disk);
- suite-every-epoch: the same with `picture_budget=0`: every epoch's pictures drawn (as before the
  budget);
- suite-cold: the same, without the drawing process's warm-up as it starts (as before it had one);
- suite-thread: the same, drawing on the suite's background thread in the training process (as
  before `monitor.drawing`), to compare the two in one run;
- suite@REV (`--baseline-rev REV`): the suite as commit REV has it (checked out into a temporary
  directory with `git worktree`; this script's fit, importing REV's `monitor` and `callbacks`),
  interleaved with this tree's in the same repeats: a before/after in one run;
- suite-no-explanations, suite-no-keras-tb: diagnostics: the suite without its Grad-CAM pictures
  (`explanations=False`), without its TensorBoard callback (`tensorboard=False`);
- suite-no-pictures: a diagnostic: the suite with every picture answered at once by a blank pixel
  (the dashboard's thumbnails still drawn): what everything but drawing the pictures costs.

Keras' input pipeline for the arrays runs with tf.data's autotuning off, in every way alike
(`--tf-data-autotune on`: the default pipeline): with it on, about one epoch in four starts after a
wait of 2-4 s in tf.data itself, in plain fits as often as with the suite
(`bench.timing.tf_data_autotune_off`).

Per C it prints medians over the repeats, with the spread (min-max) of the per-repeat ratios
(each repeat's suite fit over the none fit run next to it) and, for the whole fit, a 95% bootstrap
interval of the median ratio (what the repeats resolve):

- whole fit seconds and suite/none (also keras-tb/none);
- validation-pass seconds (median over epochs 2..E: the first one traces) and suite/none;
- the training phase of an epoch (its start to its validation pass; median over epochs 2..E),
  suite/none: what drawing the pictures of the epoch before, meanwhile, costs training;
- the seconds from the end of the last validation pass to the end of the timed fit (`fit`'s
  end, the last epoch's pictures, `close_suite`), suite minus none: the wait at the end;
- the training thread's ms per epoch in the suite's epoch-level hooks (every suite callback, its
  TensorBoard callback included, timed around each hook by this benchmark), and for reference the
  same for Keras' own callback; apart, the seconds once in on_train_begin and on_train_end (the
  latter waits for the last epoch's pictures);
- the training thread's GIL waits in ms per epoch, with the suite and without (`bench/gil_wait.py`:
  a sampler process reads the thread's state about every millisecond; it runs in every way), and
  the interpreter's count of GIL hand-overs per epoch;
- the seconds the suite's in-process threads held the CPU per epoch (the writer thread; an upper
  bound on how long they can have held the GIL);
- the drawing process's CPU seconds per epoch (its own interpreter: no GIL of the training
  process), when the suite draws in one;
- the process's total CPU seconds, suite/none.

    .venv/bin/python bench/short_epochs.py --repeats 5 --out bench/results/short_epochs.json   # ~25 min
    .venv/bin/python bench/short_epochs.py --repeats 1 --classes 10                            # ~1 min
    .venv/bin/python bench/short_epochs.py --repeats 5 --ways suite --baseline-rev 4b87fa4      # before/after
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

from bench.gil_wait import GilWaitSampler  # noqa: E402  (needs ROOT on sys.path; no Keras)
from bench.timing import (  # noqa: E402
    add_tf_data_autotune_argument,
    add_worker_arguments,
    baseline_tree,
    run_in_worker,
    served_as_worker,
    tf_data_autotune_off,
    timed,
    use_suite_of,
)

WAYS = ("none", "keras-tb", "suite", "suite-every-epoch", "suite-cold", "suite-thread", "suite-no-pictures",
        "suite-no-explanations", "suite-no-keras-tb")
ABLATIONS = {"suite-no-explanations": {"explanations": False}, "suite-no-keras-tb": {"tensorboard": False}}
TARGETS = {"fit_ratio": 1.05, "thread_ms_per_epoch": 10.0}


def worker(args) -> dict:
    """One fit of one way; returns its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    use_suite_of(args.suite_root)  # way suite@REV: that tree's suite (its drawing process too)
    if args.tf_data_autotune == "off":
        tf_data_autotune_off()
    import keras

    from bench.timing import random_classifier, validation_timer
    from callbacks import close_suite, monitoring_callbacks, seconds_on_training_thread
    from callbacks.base import ValidationSummaryCallback
    from monitor.recipes import recipe

    c = args.num_classes
    x, y, model = random_classifier(args.model, c, args.train + args.val)
    batch_size = args.batch_size or recipe(args.model).batch_size

    val_seconds: list[float] = []
    train_seconds: list[float] = []
    val_ends: list[float] = []
    run_dir = Path(args.run_dir)
    callbacks: list = []
    writers = None
    if args.way.startswith("suite"):
        options = json.loads(args.suite_kwargs) | ABLATIONS.get(args.way, {})
        if args.way == "suite-every-epoch":
            options["picture_budget"] = 0
        callbacks = monitoring_callbacks([f"class_{i:04d}" for i in range(c)], str(run_dir), **options)
        writers = next((cb.writers for cb in callbacks if isinstance(cb, ValidationSummaryCallback)), None)
        if writers is not None:
            writers.drawing.enabled = args.way != "suite-thread"  # suite-thread: every picture drawn here
            writers.drawing.warm_up = args.way != "suite-cold"  # suite-cold: the child does not warm up
            if args.way == "suite-no-pictures":
                _draw_no_pictures(writers.drawing)
    elif args.way == "keras-tb":
        callbacks = [keras.callbacks.TensorBoard(str(run_dir), histogram_freq=1)]
    hooks = _time_hooks(callbacks)
    with GilWaitSampler() as gil:
        steal_start = _stolen_seconds()
        cpu_start, start = time.process_time(), time.perf_counter()
        model.fit(x[:args.train], y[:args.train], validation_data=(x[args.train:], y[args.train:]),
                  batch_size=batch_size, epochs=args.epochs, verbose=0,
                  callbacks=[validation_timer(val_seconds, train_seconds, val_ends), *callbacks])
        if args.way.startswith("suite"):
            close_suite(callbacks)
        out = {"fit_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start,
               "val_s": val_seconds, "train_s": train_seconds, "end_of_last_epoch_s": val_ends[-1] - start,
               "stolen_s": _stolen_seconds() - steal_start}
    out |= {"gil_wait_s": gil.wait_s, "gil_samples": gil.samples, "gil_switches": gil.switches,
            "gil_why": gil.why, "hooks_epoch_s": sum(hooks[h] for h in EPOCH_HOOKS),
            "hooks_once_s": sum(hooks[h] for h in ONCE_HOOKS)}
    if writers is not None:
        out |= {"training_thread_s": seconds_on_training_thread(callbacks),
                "background_cpu_s": writers.busy_cpu_seconds, "background_wall_s": writers.busy_seconds,
                "drawing_cpu_s": getattr(writers, "drawing_cpu_seconds", None), "failed": writers.failed}
    return out


def _stolen_seconds() -> float:
    """CPU seconds the hypervisor has given to other machines since boot (all cores; /proc/stat's
    steal column): how noisy the machine was while a fit ran. 0 where unknown."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


EPOCH_HOOKS = ("on_epoch_begin", "on_test_begin", "on_test_end", "on_epoch_end")
ONCE_HOOKS = ("on_train_begin", "on_train_end")  # on_train_end: waiting for the last pictures


def _time_hooks(callbacks) -> dict[str, float]:
    """Wrap the epoch-level hooks of `callbacks` (the suite's, its TensorBoard callback included)
    with timers; returns the seconds spent in each hook, summed over callbacks, as they run."""
    spent = dict.fromkeys(EPOCH_HOOKS + ONCE_HOOKS, 0.0)
    for callback in callbacks:
        for name in spent:
            setattr(callback, name, timed(getattr(callback, name), spent, name))
    return spent


def _draw_no_pictures(drawing) -> None:
    """A diagnostic, for this benchmark only: every picture comes back at once as one blank pixel
    (the dashboard's thumbnails are still drawn: they are data), so the suite does everything else
    it does: what the suite costs with pictures that cost nothing."""
    from monitor.render.images import thumbnail_pngs

    blank = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                          "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d69e8d0000000049454e44ae426082")
    real = drawing.call

    def call(key, factory, *args):
        return real(key, factory, *args) if factory is thumbnail_pngs else blank

    drawing.call = call


def run_worker(num_classes: int, way: str, args, baseline: Path | None = None) -> dict:
    """One fit in a fresh process; the way "suite@REV" runs the suite of `baseline` (REV's tree)."""
    root = []
    if "@" in way:
        way, root = way.split("@")[0], ["--suite-root", str(baseline)]
    return run_in_worker(__file__, ["--way", way, "--num-classes", str(num_classes), "--model", args.model,
                                    "--train", str(args.train), "--val", str(args.val), "--epochs",
                                    str(args.epochs), "--batch-size", str(args.batch_size or 0),
                                    "--suite-kwargs", args.suite_kwargs, "--tf-data-autotune",
                                    args.tf_data_autotune, *root],
                         f"{way} C={num_classes} ({root or 'this tree'})")


def _later(values: list[float]) -> float:
    """Median over epochs 2.. (the first one traces the graphs)."""
    return statistics.median(values[1:] if len(values) > 1 else values)


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def _median_ci(values: list[float], resamples: int = 2000) -> str:
    """A 95% bootstrap interval of the median of `values` (seeded: the same table every time): how
    finely the repeats resolve the ratio."""
    import random

    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return f"{medians[int(0.025 * resamples)]:.3f}-{medians[int(0.975 * resamples) - 1]:.3f}"


def summarise(results: dict, epochs: int) -> list[dict]:
    rows = []
    for c, ways in results.items():
        none, tb = ways["none"], ways["keras-tb"]
        tb_ratios = [t["fit_s"] / n["fit_s"] for t, n in zip(tb, none, strict=True)]
        for way in (w for w in ways if w.startswith("suite")):
            suite = ways[way]
            fit_ratios = [s["fit_s"] / n["fit_s"] for s, n in zip(suite, none, strict=True)]
            val_ratios = [_later(s["val_s"]) / _later(n["val_s"]) for s, n in zip(suite, none, strict=True)]
            train_ratios = [_later(s["train_s"]) / _later(n["train_s"])
                            for s, n in zip(suite, none, strict=True)]
            end_s = [s["fit_s"] - s["end_of_last_epoch_s"] - (n["fit_s"] - n["end_of_last_epoch_s"])
                     for s, n in zip(suite, none, strict=True)]
            cpu_ratios = [s["cpu_s"] / n["cpu_s"] for s, n in zip(suite, none, strict=True)]
            drawing = [s["drawing_cpu_s"] for s in suite if s.get("drawing_cpu_s")]
            rows.append({
                "classes": int(c), "way": way, "repeats": len(suite),
                "fit_none_s": statistics.median(r["fit_s"] for r in none),
                "fit_tb_s": statistics.median(r["fit_s"] for r in tb),
                "fit_suite_s": statistics.median(r["fit_s"] for r in suite),
                "fit_ratio": statistics.median(fit_ratios), "fit_ratio_spread": _spread(fit_ratios),
                "fit_ratio_ci": _median_ci(fit_ratios),
                "tb_ratio": statistics.median(tb_ratios), "tb_ratio_spread": _spread(tb_ratios),
                "val_ratio": statistics.median(val_ratios), "val_ratio_spread": _spread(val_ratios),
                "train_ratio": statistics.median(train_ratios), "train_ratio_spread": _spread(train_ratios),
                "end_added_s": statistics.median(end_s), "end_added_spread": _spread(end_s),
                "cpu_ratio": statistics.median(cpu_ratios),
                "thread_ms_per_epoch": 1000 * statistics.median(r["training_thread_s"] for r in suite)
                / epochs,
                "hooks_ms_per_epoch": 1000 * statistics.median(r["hooks_epoch_s"] for r in suite) / epochs,
                "tb_hooks_ms_per_epoch": 1000 * statistics.median(r["hooks_epoch_s"] for r in tb) / epochs,
                "hooks_once_s": statistics.median(r["hooks_once_s"] for r in suite),
                **_gil_figures(suite, none, epochs),
                "gil_bound_s_per_epoch": statistics.median(r["background_cpu_s"] for r in suite) / epochs,
                "drawing_cpu_s_per_epoch": statistics.median(drawing) / epochs if drawing else None,
                "failed": [r["failed"] for r in suite if r.get("failed")]})
    return rows


def _gil_figures(suite: list[dict], none: list[dict], epochs: int) -> dict:
    """The training thread's GIL wait (ms per epoch) with the suite, without, and the median of
    the per-repeat differences; GIL hand-overs per epoch, both ways."""
    pairs = [(s, n) for s, n in zip(suite, none, strict=True)
             if s.get("gil_wait_s") is not None and n.get("gil_wait_s") is not None]
    if not pairs:
        return {"gil_wait_ms_per_epoch": None, "gil_wait_none_ms_per_epoch": None,
                "gil_wait_added_ms_per_epoch": None, "gil_wait_added_spread": "",
                "gil_switches_per_epoch": None, "gil_switches_none_per_epoch": None}
    added = [1000 * (s["gil_wait_s"] - n["gil_wait_s"]) / epochs for s, n in pairs]
    per_epoch_ms = 1000 / epochs
    return {"gil_wait_ms_per_epoch": per_epoch_ms * statistics.median(s["gil_wait_s"] for s, _ in pairs),
            "gil_wait_none_ms_per_epoch": per_epoch_ms * statistics.median(n["gil_wait_s"] for _, n in pairs),
            "gil_wait_added_ms_per_epoch": statistics.median(added), "gil_wait_added_spread": _spread(added),
            "gil_switches_per_epoch": statistics.median(s["gil_switches"] for s, _ in pairs) / epochs,
            "gil_switches_none_per_epoch": statistics.median(n["gil_switches"] for _, n in pairs) / epochs}


def _ms(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def markdown(rows: list[dict]) -> str:
    lines = ["| classes | way | fit none s | keras-tb / none (spread) | suite s "
             "| **suite / none** (spread; 95% CI of the median) "
             "| val pass suite / none (spread) | training phase suite / none (spread) "
             "| end: suite − none s (spread) | CPU suite / none | training thread in the suite's hooks "
             "ms/epoch (keras-tb's) | once: train begin + end s | GIL wait ms/epoch: suite, none "
             "(added, spread) | GIL hand-overs /epoch: suite, none | suite threads' CPU s/epoch "
             "| drawing process CPU s/epoch |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        drawing = "—" if r["drawing_cpu_s_per_epoch"] is None else f"{r['drawing_cpu_s_per_epoch']:.3f}"
        switches = ("—" if r["gil_switches_per_epoch"] is None
                    else f"{r['gil_switches_per_epoch']:.0f}, {r['gil_switches_none_per_epoch']:.0f}")
        lines.append(
            f"| {r['classes']} | {r['way']} | {r['fit_none_s']:.2f} "
            f"| {r['tb_ratio']:.3f} ({r['tb_ratio_spread']}) "
            f"| {r['fit_suite_s']:.2f} | **{r['fit_ratio']:.3f}** ({r['fit_ratio_spread']}; "
            f"{r.get('fit_ratio_ci', '—')}) "
            f"| {r['val_ratio']:.3f} ({r['val_ratio_spread']}) "
            f"| {r['train_ratio']:.3f} ({r['train_ratio_spread']}) "
            f"| {r['end_added_s']:.2f} ({r['end_added_spread']}) "
            f"| {r['cpu_ratio']:.3f} "
            f"| {r['hooks_ms_per_epoch']:.1f} ({r['tb_hooks_ms_per_epoch']:.1f}) | {r['hooks_once_s']:.2f} "
            f"| {_ms(r['gil_wait_ms_per_epoch'])}, {_ms(r['gil_wait_none_ms_per_epoch'])} "
            f"(**{_ms(r['gil_wait_added_ms_per_epoch'])}**, {r['gil_wait_added_spread']}) | {switches} "
            f"| {r['gil_bound_s_per_epoch']:.3f} | {drawing} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--model", default="simple", help="recipe whose layer stack is trained (default: simple)")
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--val", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=0, help="default: the recipe's")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS),
                   help="the ways compared (none and keras-tb are always run)")
    p.add_argument("--baseline-rev", help="also run the suite of this commit (way suite@REV), interleaved")
    p.add_argument("--out", help="write the raw numbers as JSON here (and the table beside it as .md)")
    p.add_argument("--suite-kwargs", default="{}",
                   help="diagnostic: keyword arguments (JSON) for monitoring_callbacks, e.g. "
                   '\'{"tensorboard": false, "explanations": false}\' (default: none)')
    add_tf_data_autotune_argument(p)
    p.add_argument("--suite-root", help=argparse.SUPPRESS)  # a worker of way suite@REV: REV's tree
    add_worker_arguments(p)
    args = p.parse_args(argv)
    if served_as_worker(args, worker):
        return
    ways = [w for w in WAYS if w in ("none", "keras-tb") or w in args.ways]
    if args.baseline_rev:
        ways.insert(ways.index("keras-tb") + 1, f"suite@{args.baseline_rev}")
    results: dict[int, dict[str, list]] = {c: {w: [] for w in ways} for c in args.classes}
    with baseline_tree(args.baseline_rev) as baseline:
        for r in range(args.repeats):  # repeats outermost: a slow spell of the machine hits every C alike
            for c in args.classes:
                for way in ways:
                    start = time.time()
                    done = run_worker(c, way, args, baseline)
                    results[c][way].append(done)
                    print(f"repeat {r + 1} C={c} {way}: {time.time() - start:.0f} s "
                          f"(fit {done['fit_s']:.2f} s, "
                          f"stolen {done.get('stolen_s', 0):.2f} s)", file=sys.stderr, flush=True)
    rows = summarise(results, args.epochs)
    table = markdown(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "targets": TARGETS, "rows": rows,
                                              "raw": results}, indent=1))
        Path(args.out).with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
