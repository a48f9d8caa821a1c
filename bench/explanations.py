"""Cost of the Grad-CAM explanations (`--no-explanations` against the default) on the dropout model.

Trains the `dropout` model (recipe batch size 256) on CIFAR-10 with the whole monitoring suite, in
separate worker processes, once without and once with explanations (`--repeats R`: R interleaved
pairs), on the same stratified subset, split (seed 42, validation split 0.3), seed and epochs. It
prints, as markdown:

- the explanation step's seconds per epoch on the training thread (the Grad-CAM pass at epoch end:
  one forward and backward pass over the kept mistakes and grid images) and off it (writing on the
  suite's background thread, drawing in its niced drawing process: `monitor.drawing`);
- each way's median epoch time (epochs 2.., the first traces the graphs) and whole-fit time, and
  their ratios with / without;
- the target: training-thread seconds <= 2% of an epoch of the dropout recipe (all 35,000 training
  images), and the measured epoch-time ratio beside it.

Run from the project root. A brief check that the script works (a minute or two):

    .venv/bin/python bench/explanations.py --train-size 1000 --epochs 2

The measurement (all 50,000 training images -> 35,000 / 15,000, 4 epochs, 2 interleaved repeats):

    .venv/bin/python bench/explanations.py --epochs 4 --repeats 2 --out bench_explanations.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL, DATASET, SEED, VAL_SPLIT = "dropout", "cifar10", 42, 0.3
WAYS = ("without", "with")
TARGET_SHARE = 0.02  # of an epoch, on the training thread


def run_worker(way: str, args: argparse.Namespace) -> dict:
    """Train one way; per-epoch wall times and the explanation callback's own clocks."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from callbacks.explanations import ExplanationsCallback
    from callbacks.suite import close_suite, monitoring_callbacks
    from monitor.data import load_splits
    from monitor.settings import RunConfig
    from runner.inputs import prepare_arrays, seeded_model

    config = RunConfig(model=MODEL, dataset=DATASET, val_split=VAL_SPLIT, seed=SEED).resolved()
    splits = load_splits(DATASET, args.data_dir, VAL_SPLIT, SEED, args.train_size)
    names = list(splits.dataset.class_names)
    xt, yt = prepare_arrays(splits.x_train, splits.y_train, MODEL, len(names))
    xv, yv = prepare_arrays(splits.x_val, splits.y_val, MODEL, len(names))
    del splits
    model = seeded_model(config, xt.shape[1:], len(names))
    suite = monitoring_callbacks(names, args.logdir, explanations=way == "with")
    explain = next((c for c in suite if isinstance(c, ExplanationsCallback)), None)
    epochs: list[dict] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.begin = time.perf_counter()
            self.explained = explain.seconds_explaining if explain else 0.0

        def on_epoch_end(self, epoch, logs=None):  # last in the list: after the suite's hooks
            on_thread = (explain.seconds_explaining - self.explained) if explain else 0.0
            epochs.append({"epoch_s": time.perf_counter() - self.begin, "explain_s": on_thread})

    start = time.perf_counter()
    model.fit(xt, yt, validation_data=(xv, yv), batch_size=config.batch_size, epochs=args.epochs,
              callbacks=[*suite, Clock()], shuffle=True, verbose=0)
    close_suite(suite)
    fit_s = time.perf_counter() - start
    last = explain.last if explain else None
    return {"way": way, "train_size": len(xt), "validation_size": len(xv), "fit_s": fit_s, "epochs": epochs,
            "rendering_s": explain.seconds_rendering if explain else 0.0,
            "drawing_cpu_s": explain.writers.drawing.cpu_by_picture.get("ExplanationGridRenderer", 0.0)
            if explain else 0.0,
            "explained_images": len(last.mistakes) + len(last.grid_maps) if last else 0,
            "layer": last.layer if last else None}


def run_way(way: str, repeat: int, args: argparse.Namespace, workdir: Path) -> dict:
    name = f"{way}-{repeat + 1}"
    result, log = workdir / f"{name}.json", workdir / f"{name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", way, "--result", str(result),
           "--logdir", str(workdir / "logs" / name), "--epochs", str(args.epochs)]
    cmd += ["--train-size", str(args.train_size)] if args.train_size else []
    cmd += ["--data-dir", args.data_dir] if args.data_dir else []
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}).returncode
    if code != 0 or not result.exists():
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
        raise SystemExit(f"worker {name} failed (exit code {code}); files kept in {workdir}\n{tail}")
    print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return json.loads(result.read_text(encoding="utf-8"))


def summary(runs: list[dict]) -> dict:
    """Medians over repeats of each run's medians over epochs 2.. (all epochs if only one)."""
    def per_run(run):
        window = run["epochs"][1:] or run["epochs"]
        n = len(run["epochs"])
        return {"epoch_s": statistics.median(e["epoch_s"] for e in window),
                "explain_s": statistics.median(e["explain_s"] for e in window),
                "first_explain_s": run["epochs"][0]["explain_s"], "rendering_s": run["rendering_s"] / n,
                "drawing_cpu_s": run.get("drawing_cpu_s", 0.0) / n,
                "fit_s": run["fit_s"]}
    each = [per_run(r) for r in runs]
    return {k: statistics.median(e[k] for e in each) for k in each[0]}


def markdown(runs: dict, args) -> str:
    without, with_ = summary(runs["without"]), summary(runs["with"])
    first = runs["with"][0]
    share = with_["explain_s"] / with_["epoch_s"]
    scale = 35000 / first["train_size"]  # the recipe's epoch: all 35,000 training images
    full_share = with_["explain_s"] / (without["epoch_s"] * scale) if first["train_size"] < 35000 else share
    lines = [
        f"Model `{MODEL}`, CIFAR-10 {first['train_size']} train / {first['validation_size']} validation "
        f"images, {args.epochs} epochs, {args.repeats} repeat(s); explained per epoch: "
        f"{first['explained_images']} images at `{first['layer']}`; nproc {os.cpu_count()}.", "",
        "| way | epoch s (median, epochs 2..) | fit s |", "|---|---:|---:|",
        f"| without explanations | {without['epoch_s']:.2f} | {without['fit_s']:.1f} |",
        f"| with explanations | {with_['epoch_s']:.2f} | {with_['fit_s']:.1f} |", "",
        f"- explanation step on the training thread: {1000 * with_['explain_s']:.0f} ms/epoch "
        f"(first epoch, tracing included: {1000 * with_['first_explain_s']:.0f} ms)",
        f"- off the training thread (drawing, writing): {1000 * with_['rendering_s']:.0f} ms/epoch on the "
        f"suite's writer thread, waiting for the drawing process, which spent "
        f"{1000 * with_['drawing_cpu_s']:.0f} ms/epoch of CPU on these pictures (niced)",
        f"- epoch-time ratio with / without: {with_['epoch_s'] / without['epoch_s']:.3f}; whole fit: "
        f"{with_['fit_s'] / without['fit_s']:.3f}",
        f"- [{'PASS' if full_share <= TARGET_SHARE else 'FAIL'}] training-thread seconds <= "
        f"{TARGET_SHARE:.0%} of a dropout-recipe epoch: {full_share:.2%}"
        + ("" if first["train_size"] >= 35000 else
           f" (epoch scaled from {first['train_size']} to 35,000 training images; {share:.2%} of this "
           "run's epoch)"),
    ]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Seconds per epoch of the Grad-CAM explanations, on and off "
                                "the training thread, and the fit-time ratio with and without them.")
    p.add_argument("--train-size", type=int, default=None,
                   help="CIFAR-10 training images used before the 70/30 split (default: all 50,000)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per way (default: 4)")
    p.add_argument("--repeats", type=int, default=1, help="interleaved repeats of both ways (default: 1)")
    p.add_argument("--data-dir", default=os.environ.get("MONITOR_DATA_DIR"),
                   help="directory holding cifar10.npz (default: $MONITOR_DATA_DIR, else Keras' download)")
    p.add_argument("--out", default=None, help="also write the raw runs and the markdown here (JSON)")
    p.add_argument("--worker", choices=WAYS, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--logdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        p.error("--epochs and --repeats must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        Path(args.result).write_text(json.dumps(run_worker(args.worker, args)), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_explanations_") as tmp:
        runs: dict[str, list] = {way: [] for way in WAYS}
        for repeat in range(args.repeats):
            for way in WAYS:
                runs[way].append(run_way(way, repeat, args, Path(tmp)))
    text = markdown(runs, args)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": runs, "markdown": text}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
