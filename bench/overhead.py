"""Overhead of the monitoring suite against plain Keras and the reference approach.

Trains the `dropout` model (recipe batch size 256) on CIFAR-10 in separate
worker processes, one per way, on the same stratified subset, split (seed 42,
validation split 0.3), seed and number of epochs:

- plain:     `model.fit` on numpy arrays with `keras.callbacks.TensorBoard(histogram_freq=1)`.
- reference: plain + the LambdaCallback of docs/recipes.md "simple" (bench/reference_callback.py).
- suite:     plain + `callbacks.suite.monitoring_callbacks(..., tensorboard=False)`, every part
             on, then `close_suite` (timed as close_s).
- trainpy:   plain callbacks, but train.py's input path (`prepare_arrays` + `make_dataset`).

Epoch wall time, seconds per epoch spent in the monitoring callbacks on the
training thread, RSS per epoch and training images/s are medians over epochs
2..8 (the first epoch traces the graph); with `--repeats R` the ways run
interleaved (plain, reference, suite, trainpy, plain, ...) and the report takes
the median over repeats. Render times of monitor.render are measured in this
(parent) process. Markdown goes to stdout, progress to stderr.

Run from the project root. Quick run (a couple of minutes, e.g. to check that the script works):

    .venv/bin/python bench/overhead.py --train-size 1000 --epochs 3 --render-repeats 5 \\
        --out /tmp/bench_quick.json

Full run (all 50,000 training images -> 35,000/15,000, 8 epochs, 1 repeat; add
`--repeats 3` to interleave three repeats of every way):

    .venv/bin/python bench/overhead.py --out bench_full.json

Memory run (the RSS-growth target is meant for this one):

    .venv/bin/python bench/overhead.py --train-size 5000 --epochs 30 --out bench_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import timed  # noqa: E402  (needs ROOT on sys.path; no Keras)
from monitor.runs import package_versions  # noqa: E402

DATASET = "cifar10"
MODEL = "dropout"
SEED = 42
VAL_SPLIT = 0.3
WAYS = ("plain", "reference", "suite", "trainpy")
FIRST_EPOCH, LAST_EPOCH = 2, 8  # 1-based epochs the medians are taken over

MAX_SUITE_RATIO = 1.03
MIN_REFERENCE_FACTOR = 10.0
MAX_CONFUSION_MS = 150.0
MAX_GRID_MS = 250.0
MAX_EXTRA_GROWTH_PP = 5.0

HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
         "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end")
BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
               "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
               "on_predict_batch_end")


# --------------------------------------------------------------------------
# worker side: one way, one process


def proc_status_mb(field: str) -> float:
    """A `/proc/self/status` memory field (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker_callbacks():
    """The callback classes the worker needs (defined here so the parent never imports Keras)."""
    import keras

    def is_default(method) -> bool:
        # Keras marks the no-op hooks of `Callback` this way and uses the same test to
        # decide whether batch hooks may run asynchronously.
        return getattr(method, "_is_default", False)

    class TimedCallback(keras.callbacks.Callback):
        """Forwards every hook to `inner`; adds the seconds spent in it to `totals[key]`.

        Batch hooks are forwarded only where `inner` implements them, so Keras
        dispatches batches exactly as it would for `inner` itself.
        """

        def __init__(self, inner, totals: dict, key: str):
            super().__init__()
            self.inner = inner
            self.totals = totals
            self.key = key
            self.async_safe = getattr(inner, "async_safe", False)
            for name in BATCH_HOOKS:
                method = getattr(inner, name)
                if not is_default(method):
                    setattr(self, name, self._timed(method))

        def _timed(self, method):
            return timed(method, self.totals, self.key)

        def set_model(self, model):
            super().set_model(model)
            self._timed(self.inner.set_model)(model)

        def set_params(self, params):
            super().set_params(params)
            self._timed(self.inner.set_params)(params)

    def forward(name: str):
        def hook(self, *args, **kwargs):
            return self._timed(getattr(self.inner, name))(*args, **kwargs)
        hook.__name__ = name
        return hook

    for name in HOOKS:
        setattr(TimedCallback, name, forward(name))

    class EpochClock:
        """Per-epoch timestamps, RSS and callback seconds.

        `first` goes first in the callback list and `last` last, so an epoch's wall
        time spans every callback's epoch hooks and the validation time spans every
        callback's test hooks.
        """

        def __init__(self, totals: dict):
            self.totals = totals
            self.epochs: list[dict] = []
            self._seen = dict(totals)
            self._now: dict = {}
            clock = self

            class First(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    clock._now = {"epoch": epoch + 1, "begin": time.perf_counter()}

                def on_test_begin(self, logs=None):
                    clock._now.setdefault("test_begin", time.perf_counter())

            class Last(keras.callbacks.Callback):
                def on_test_end(self, logs=None):
                    clock._now["test_end"] = time.perf_counter()

                def on_epoch_end(self, epoch, logs=None):
                    clock._epoch_end()

            self.first, self.last = First(), Last()

        def _epoch_end(self) -> None:
            now, end = self._now, time.perf_counter()
            test_begin = now.get("test_begin", end)
            test_end = now.get("test_end", test_begin)
            spent = {k: self.totals[k] - self._seen[k] for k in self.totals}
            self._seen = dict(self.totals)
            self.epochs.append({
                "epoch": now["epoch"],
                "epoch_s": end - now["begin"],
                "train_s": test_begin - now["begin"],
                "validation_s": test_end - test_begin,
                "after_validation_s": end - test_end,
                "callback_s": spent["monitoring"],
                "tensorboard_cb_s": spent["tensorboard"],
                "rss_mb": proc_status_mb("VmRSS"),
            })

    return TimedCallback, EpochClock


def run_worker(way: str, args: argparse.Namespace) -> dict:
    """Train one way and return its raw measurements."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import keras

    from callbacks.suite import close_suite, monitoring_callbacks, seconds_on_training_thread
    from monitor.data import load_splits
    from monitor.settings import RunConfig
    from runner.inputs import make_dataset, prepare_arrays, seeded_model

    config = RunConfig(model=MODEL, dataset=DATASET, val_split=VAL_SPLIT, seed=SEED).resolved()
    splits = load_splits(DATASET, args.data_dir, VAL_SPLIT, SEED, args.train_size)
    class_names = list(splits.dataset.class_names)
    x_tr, y_tr, x_val, y_val = splits.x_train, splits.y_train, splits.x_val, splits.y_val
    del splits  # drops the full data set (test split included) before training
    num_classes = len(class_names)
    xt, yt = prepare_arrays(x_tr, y_tr, MODEL, num_classes)
    xv, yv = prepare_arrays(x_val, y_val, MODEL, num_classes)
    del x_tr, y_tr, x_val

    model = seeded_model(config, xt.shape[1:], num_classes)
    batch_size = config.batch_size

    TimedCallback, EpochClock = worker_callbacks()
    totals = {"monitoring": 0.0, "tensorboard": 0.0}
    logdir = args.logdir
    tensorboard = keras.callbacks.TensorBoard(log_dir=logdir, histogram_freq=1)
    suite: list = []
    monitoring: list = []
    if way == "reference":
        from bench.reference_callback import reference_callback

        monitoring = [reference_callback(model, xv, y_val, class_names, logdir)]
    elif way == "suite":
        suite = monitoring_callbacks(class_names, logdir, tensorboard=False)
        monitoring = suite
    clock = EpochClock(totals)
    callbacks = [clock.first, TimedCallback(tensorboard, totals, "tensorboard"),
                 *(TimedCallback(c, totals, "monitoring") for c in monitoring), clock.last]

    rss_before_fit = proc_status_mb("VmRSS")
    start = time.perf_counter()
    if way == "trainpy":
        model.fit(make_dataset(xt, yt, batch_size, True, SEED),
                  validation_data=make_dataset(xv, yv, batch_size, False, SEED),
                  epochs=args.epochs, callbacks=callbacks, shuffle=False, verbose=0)
    else:
        model.fit(xt, yt, validation_data=(xv, yv), batch_size=batch_size, epochs=args.epochs,
                  callbacks=callbacks, shuffle=True, verbose=0)
    fit_s = time.perf_counter() - start
    close_s = None
    if suite:
        start = time.perf_counter()
        close_suite(suite)
        close_s = time.perf_counter() - start
    return {
        "way": way,
        "train_size": len(xt),
        "validation_size": len(xv),
        "batch_size": batch_size,
        "fit_s": fit_s,
        "close_s": close_s,
        "callback_total_s": totals["monitoring"],
        "tensorboard_cb_total_s": totals["tensorboard"],
        "suite_self_reported_s": seconds_on_training_thread(suite) if suite else None,
        "rss_before_fit_mb": rss_before_fit,
        "peak_rss_mb": proc_status_mb("VmHWM"),
        "epochs": clock.epochs,
    }


# --------------------------------------------------------------------------
# parent side: run the workers, time the renders, report


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize_run(run: dict) -> dict:
    """Medians over epochs 2..8 (all epochs if there is only one) of one worker run."""
    epochs = run["epochs"]
    window = epochs[FIRST_EPOCH - 1:LAST_EPOCH] or epochs
    rss = [e["rss_mb"] for e in epochs]
    base = rss[FIRST_EPOCH - 1] if len(rss) >= FIRST_EPOCH else rss[0]
    growth = rss[-1] - base
    return {
        "epoch_s": median(e["epoch_s"] for e in window),
        "callback_s": median(e["callback_s"] for e in window),
        "tensorboard_cb_s": median(e["tensorboard_cb_s"] for e in window),
        "validation_s": median(e["validation_s"] for e in window),
        "images_per_s": median(run["train_size"] / e["train_s"] for e in window if e["train_s"] > 0),
        "fit_s": run["fit_s"],
        # train begin/end hooks, e.g. the suite draining its render queue when fit ends
        "callback_outside_epochs_s": run["callback_total_s"] - sum(e["callback_s"] for e in epochs),
        "peak_rss_mb": run["peak_rss_mb"],
        "rss_growth_mb": growth,
        "rss_growth_pct": 100.0 * growth / base if base else None,
        "close_s": run["close_s"],
    }


def aggregate(summaries: list[dict]) -> dict:
    """Median across repeats of every per-run median."""
    return {key: median(s[key] for s in summaries) for key in summaries[0]}


def run_way(way: str, repeat: int, args: argparse.Namespace, workdir: Path) -> dict:
    """Run one worker process; return its result (raises SystemExit on failure)."""
    name = f"{way}-{repeat + 1}"
    result = workdir / f"{name}.json"
    log = workdir / f"{name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", way, "--result", str(result),
           "--logdir", str(workdir / "logs" / name), "--epochs", str(args.epochs)]
    if args.train_size:
        cmd += ["--train-size", str(args.train_size)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    if code != 0 or not result.exists():
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
        raise SystemExit(f"worker {name} failed (exit code {code}); files kept in {workdir}\n{tail}")
    print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return json.loads(result.read_text(encoding="utf-8"))


def render_inputs(data_dir: str | None):
    """Realistic render inputs: CIFAR-10 names and images, ~1500 validation images per class."""
    import numpy as np

    from monitor import data as data_mod

    ds = data_mod.load(DATASET, data_dir)
    names = list(ds.class_names)
    n = len(names)
    rng = np.random.default_rng(SEED)
    rates = np.full((n, n), 0.3 / (n - 1))
    np.fill_diagonal(rates, 0.7)
    cm = np.stack([rng.multinomial(1500, row) for row in rates])
    images = ds.x_test[:18].astype(np.float32) / 255.0  # the suite renders model inputs
    truth = ds.y_test[:18].astype(np.int64)
    logits = rng.normal(scale=2.0, size=(18, n))
    logits[np.arange(18), truth] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return names, cm, images, truth, probs


def time_renders(repeats: int, data_dir: str | None) -> dict:
    """Median/min/max milliseconds of each image kind over `repeats` renders (after one warm-up)."""
    from monitor import render

    names, cm, images, truth, probs = render_inputs(data_dir)
    title = "Validation confusion matrix, epoch 3/8, accuracy 0.700"
    kinds = {
        "confusion heatmap (normalized)":
            lambda: render.confusion_heatmap(cm, names, f"{title} (normalized)", normalized=True),
        "confusion heatmap (counts)":
            lambda: render.confusion_heatmap(cm, names, f"{title} (counts)", normalized=False),
        "prediction grid (18)":
            lambda: render.prediction_grid(images, truth, probs.argmax(1), probs.max(1), names,
                                           "Validation predictions, epoch 3/8", cols=6),
        "probability bars (4)":
            lambda: render.probability_bars(images[:4], truth[:4], probs[:4], names,
                                            "Class probabilities, epoch 3/8"),
    }
    results = {}
    for kind, draw in kinds.items():
        draw()  # warm-up: imports, font cache
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            draw()
            times.append(1000.0 * (time.perf_counter() - start))
        results[kind] = {"median_ms": statistics.median(times), "min_ms": min(times),
                         "max_ms": max(times), "renders": repeats, "times_ms": times}
    return results


def check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def targets(ways: dict, renders: dict) -> list[dict]:
    """Each target with its measured value and PASS / FAIL / n/a."""
    plain, reference = ways.get("plain"), ways.get("reference")
    suite, trainpy = ways.get("suite"), ways.get("trainpy")
    out = []

    def add(name: str, measured: str, ok: bool | None, note: str = "") -> None:
        out.append({"target": name, "measured": measured, "result": check(ok), "note": note})

    ratio = suite["epoch_s"] / plain["epoch_s"] if suite and plain else None
    add(f"suite/plain epoch time <= {MAX_SUITE_RATIO}",
        f"{ratio:.3f}" if ratio is not None else "-", None if ratio is None else ratio <= MAX_SUITE_RATIO)
    if suite and reference and reference["callback_s"]:
        factor = reference["callback_s"] / max(suite["callback_s"], 1e-9)
        add(f"suite callback time <= 1/{MIN_REFERENCE_FACTOR:g} of reference's",
            f"{suite['callback_s'] * 1000:.1f} ms vs {reference['callback_s'] * 1000:.1f} ms "
            f"({factor:.1f}x less)", factor >= MIN_REFERENCE_FACTOR)
    else:
        add(f"suite callback time <= 1/{MIN_REFERENCE_FACTOR:g} of reference's", "-", None)
    for kind, limit in (("confusion heatmap (normalized)", MAX_CONFUSION_MS),
                        ("confusion heatmap (counts)", MAX_CONFUSION_MS),
                        ("prediction grid (18)", MAX_GRID_MS)):
        r = renders.get(kind)
        add(f"{kind} render <= {limit:g} ms", f"{r['median_ms']:.0f} ms" if r else "-",
            r["median_ms"] <= limit if r else None)
    if trainpy and plain:
        add("trainpy training images/s >= plain's",
            f"{trainpy['images_per_s']:.0f} vs {plain['images_per_s']:.0f}",
            trainpy["images_per_s"] >= plain["images_per_s"])
    else:
        add("trainpy training images/s >= plain's", "-", None)
    if suite and plain and suite["rss_growth_pct"] is not None and plain["rss_growth_pct"] is not None:
        add(f"memory: suite RSS growth <= plain's + {MAX_EXTRA_GROWTH_PP:g} pp",
            f"{suite['rss_growth_pct']:+.1f}% vs {plain['rss_growth_pct']:+.1f}%",
            suite["rss_growth_pct"] <= plain["rss_growth_pct"] + MAX_EXTRA_GROWTH_PP,
            "meant for --train-size 5000 --epochs 30")
    else:
        add(f"memory: suite RSS growth <= plain's + {MAX_EXTRA_GROWTH_PP:g} pp", "-", None,
            "meant for --train-size 5000 --epochs 30")
    return out


def fmt(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def markdown(report: dict) -> str:
    ways, renders = report["ways"], report["render_ms"]
    plain = ways.get("plain", {}).get("summary")
    first = report["setup"]
    epochs_used = f"{FIRST_EPOCH}..{min(LAST_EPOCH, first['epochs'])}" if first["epochs"] > 1 else "1"
    lines = [
        f"Model `{MODEL}`, CIFAR-10 {first['train_images']} train / {first['validation_images']} "
        f"validation images, batch {first['batch_size']}, {first['epochs']} epochs, "
        f"{report['args']['repeats']} repeat(s); medians over epochs {epochs_used}; "
        f"nproc {report['machine']['nproc']}.",
        "",
        "| way | epoch s | ratio vs plain | callbacks ms/epoch | TensorBoard cb ms/epoch | "
        "train images/s | peak RSS MB | RSS growth MB (%) | fit s (all epochs) | close s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for way, entry in ways.items():
        s = entry["summary"]
        ratio = s["epoch_s"] / plain["epoch_s"] if plain else None
        growth = f"{fmt(s['rss_growth_mb'], '+.1f')} ({fmt(s['rss_growth_pct'], '+.1f')}%)"
        lines.append(
            f"| {way} | {fmt(s['epoch_s'], '.2f')} | {fmt(ratio, '.3f')} | "
            f"{fmt(s['callback_s'], '.1f', 1000)} | {fmt(s['tensorboard_cb_s'], '.1f', 1000)} | "
            f"{fmt(s['images_per_s'], '.0f')} | {fmt(s['peak_rss_mb'], '.0f')} | {growth} | "
            f"{fmt(s['fit_s'], '.1f')} | {fmt(s['close_s'], '.3f')} |"
        )
    lines += [
        "",
        "callbacks ms/epoch: time in the monitoring callbacks' hooks on the training thread (the "
        "TensorBoard callback is its own column); train images/s: training images / time from epoch "
        "begin to validation begin; RSS growth: epoch 2 to the last epoch.",
    ]
    lines += ["", "| image kind | median ms | min ms | max ms | renders |", "|---|---:|---:|---:|---:|"]
    for kind, r in renders.items():
        lines.append(f"| {kind} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{r['renders']} |")
    lines += ["", "Targets:"]
    for t in report["targets"]:
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"- [{t['result']}] {t['target']}: {t['measured']}{note}")
    return "\n".join(lines)


def machine_info() -> dict:
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


def parse_ways(text: str) -> list[str]:
    ways = [w.strip() for w in text.split(",") if w.strip()]
    unknown = sorted(set(ways) - set(WAYS))
    if unknown or not ways:
        raise argparse.ArgumentTypeError(f"choose from {','.join(WAYS)}; got {text!r}")
    return [w for w in WAYS if w in ways]  # fixed interleaving order


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Epoch time, callback time, memory and render time of the monitoring suite "
                    "against plain Keras TensorBoard and the reference LambdaCallback.",
    )
    p.add_argument("--train-size", type=int, default=None,
                   help="CIFAR-10 training images used before the 70/30 split (default: all 50,000)")
    p.add_argument("--epochs", type=int, default=8, help="epochs per way (default: 8)")
    p.add_argument("--repeats", type=int, default=1, help="interleaved repeats of every way (default: 1)")
    p.add_argument("--ways", type=parse_ways, default=list(WAYS),
                   help=f"comma-separated ways to run (default: {','.join(WAYS)})")
    p.add_argument("--render-repeats", type=int, default=20,
                   help="timed renders per image kind (default: 20)")
    p.add_argument("--data-dir", default=None,
                   help="directory holding cifar10.npz (default: $MONITOR_DATA_DIR, else "
                        "../shared/data next to the project if it has cifar10.npz, else Keras' download)")
    p.add_argument("--out", default=None,
                   help="also write the report as JSON here, and as markdown beside it (.md)")
    p.add_argument("--keep-logs", action="store_true", help="keep the per-way logs and event files")
    p.add_argument("--worker", choices=WAYS, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--logdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("epochs", "repeats", "render_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.train_size is not None and args.train_size < 10:
        p.error("--train-size must be at least 10 (one image per class)")
    if args.data_dir is None and not os.environ.get("MONITOR_DATA_DIR"):
        shared = ROOT.parent / "shared" / "data"
        if (shared / f"{DATASET}.npz").exists():
            args.data_dir = str(shared)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = run_worker(args.worker, args)
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")
        return 0

    start = time.perf_counter()
    machine = machine_info()
    print(f"Timing renders ({args.render_repeats} per kind) ...", file=sys.stderr, flush=True)
    renders = time_renders(args.render_repeats, args.data_dir)
    workdir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    runs: dict[str, list[dict]] = {way: [] for way in args.ways}
    print(f"Training {','.join(args.ways)} x {args.repeats} in {workdir} ...", file=sys.stderr, flush=True)
    for repeat in range(args.repeats):
        for way in args.ways:
            run = run_way(way, repeat, args, workdir)
            run["summary"] = summarize_run(run)
            runs[way].append(run)

    ways = {way: {"summary": aggregate([r["summary"] for r in rs]), "runs": rs} for way, rs in runs.items()}
    summaries = {way: entry["summary"] for way, entry in ways.items()}
    first = next(iter(runs.values()))[0]
    machine["loadavg_at_end"] = os.getloadavg()
    report = {
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "result", "logdir")},
        "setup": {"dataset": DATASET, "model": MODEL, "seed": SEED, "validation_split": VAL_SPLIT,
                  "batch_size": first["batch_size"], "train_images": first["train_size"],
                  "validation_images": first["validation_size"], "epochs": args.epochs,
                  "median_epochs": [FIRST_EPOCH, LAST_EPOCH]},
        "machine": machine,
        "packages": package_versions(),
        "ways": ways,
        "render_ms": renders,
        "targets": targets(summaries, renders),
        "total_s": time.perf_counter() - start,
    }
    table = markdown(report)
    print(table)
    if args.out:
        out = Path(args.out)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
        print(f"Reports: {out} and {out.with_suffix('.md')}", file=sys.stderr)
    if args.keep_logs:
        print(f"Logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
