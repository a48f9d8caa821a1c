"""The suite under each tf.distribute strategy: counts, who writes, time, validation overhead.

The same small run under each strategy: the `dropout` model on a stratified CIFAR-10
subset (default 5,000 images -> 3,500 train / 1,500 validation, seed 42), batch 256
(global), 3 epochs, with `train.py`'s input path (`prepare_arrays` + `make_dataset`):

- default:     no strategy, one process;
- mirrored:    `MirroredStrategy` over 2 logical CPU devices of one process;
- multiworker: `MultiWorkerMirroredStrategy`, 2 worker processes on 127.0.0.1 (TF_CONFIG).

Each strategy runs once with the full suite and once with plain Keras (its TensorBoard
callback only), so the validation pass can be compared under the same strategy. Per
run it reports: the last epoch's confusion counts' sum (the validation size is the
target), whether they equal `model.predict`'s matrix on the same data, the files each
process wrote under the log directory and under its own TMPDIR, the fit's wall time and
the median validation pass (epochs 2..E).

    MONITOR_DATA_DIR=../shared/data .venv/bin/python bench/distribute.py \\
        --out bench/results/distribute.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def worker(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.strategy == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from monitor.distribution import make_strategy

    strategy = make_strategy(args.strategy)  # before any other TensorFlow work
    import keras
    import numpy as np

    from bench.timing import validation_timer
    from callbacks import close_suite, monitoring_callbacks
    from callbacks.chief_tensorboard import ChiefTensorBoard
    from monitor.data import load_splits
    from monitor.distribution import enable_keras_multiworker, strategy_is_chief
    from monitor.runfiles import matrices
    from monitor.settings import RunConfig
    from runner.inputs import make_dataset, prepare_arrays, seeded_model

    c = RunConfig(model="dropout", limit=args.limit, epochs=args.epochs).resolved()
    splits = load_splits("cifar10", args.data_dir, c.val_split, c.seed, c.limit)
    names = splits.dataset.class_names
    with strategy.scope():
        model = seeded_model(c, splits.x_train.shape[1:], len(names))
    enable_keras_multiworker(model)
    x_val, y_val = prepare_arrays(splits.x_val, splits.y_val, "dropout", len(names))
    train_ds = make_dataset(*prepare_arrays(splits.x_train, splits.y_train, "dropout", len(names)),
                            c.batch_size, True, c.seed)
    val_ds = make_dataset(x_val, y_val, c.batch_size, False, c.seed)
    val_seconds: list[float] = []

    logdir = Path(args.logdir)
    if args.suite:
        callbacks = monitoring_callbacks(names, str(logdir))
    else:
        callbacks = [ChiefTensorBoard(str(logdir), histogram_freq=1)]
    start = time.perf_counter()
    model.fit(train_ds, validation_data=val_ds, epochs=c.epochs, verbose=0,
              callbacks=[validation_timer(val_seconds), *callbacks])
    if args.suite:
        close_suite(callbacks)
    fit_seconds = time.perf_counter() - start
    chief = strategy_is_chief(strategy)
    out = {"chief": chief, "replicas": strategy.num_replicas_in_sync, "fit_s": fit_seconds,
           "val_s": val_seconds, "validation_size": len(x_val)}
    last_matrix = matrices.last(str(logdir))
    if args.suite and chief and last_matrix is not None:
        last = last_matrix[2]
        # predict on one process with the trained weights (outside the strategy: no collectives)
        local = keras.models.clone_model(model)
        local.set_weights(model.get_weights())
        predicted = local.predict(x_val, batch_size=256, verbose=0).argmax(1)
        expected = np.zeros_like(last)
        np.add.at(expected, (y_val.argmax(1) if y_val.ndim == 2 else y_val, predicted), 1)
        out |= {"counts_sum": int(last.sum()), "equals_predict": bool((last == expected).all())}
    return out


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(strategy: str, suite: bool, args) -> list[dict]:
    """One run under `strategy`: one process, or two workers for multiworker."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        logdir = tmp / "logs"
        processes = 2 if strategy == "multiworker" else 1
        ports = free_ports(processes)
        procs = []
        for index in range(processes):
            scratch = tmp / f"tmp{index}"
            scratch.mkdir()
            env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT)}
            if strategy == "multiworker":
                env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                               "task": {"type": "worker", "index": index}})
            command = [sys.executable, __file__, "--worker", "--strategy", strategy, "--logdir", str(logdir),
                       "--worker-out", str(tmp / f"out{index}.json"), "--limit", str(args.limit),
                       "--epochs", str(args.epochs), "--data-dir", args.data_dir or ""]
            command += ["--suite"] if suite else []
            procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True))
        errors = [p.communicate()[1] for p in procs]
        results = []
        for index, (p, err) in enumerate(zip(procs, errors, strict=True)):
            if p.returncode != 0:
                raise SystemExit(f"{strategy} worker {index} failed:\n{err[-3000:]}")
            result = json.loads((tmp / f"out{index}.json").read_text())
            result["tmpdir_files"] = files_under(tmp / f"tmp{index}")
            results.append(result)
        written = files_under(logdir)
        for result in results:  # what the chief wrote is all that is there
            result["logdir_files"] = written if result["chief"] else []
        return results


def summarise(strategy: str, suite_runs: list[dict], plain_runs: list[dict]) -> dict:
    chief = next(r for r in suite_runs if r["chief"])
    plain_chief = next(r for r in plain_runs if r["chief"])

    def val(r):
        return statistics.median(r["val_s"][1:] or r["val_s"])

    def wrote(r):
        events = [f for f in r["logdir_files"] if "tfevents" in f]
        others = [f for f in r["logdir_files"] if "tfevents" not in f]
        return (f"{len(events)} event files ({', '.join(sorted({f.split('/')[0] for f in events}))}), "
                f"{', '.join(others)}" if r["logdir_files"] else "nothing") + (
                f"; TMPDIR left: {len(r['tmpdir_files'])} files" if r["tmpdir_files"] else "")

    return {"strategy": strategy, "replicas": chief["replicas"], "processes": len(suite_runs),
            "counts_sum": chief.get("counts_sum"), "validation_size": chief["validation_size"],
            "equals_predict": chief.get("equals_predict"),
            "wrote": {("chief" if r["chief"] else f"worker {i}"): wrote(r) for i, r in enumerate(suite_runs)},
            "fit_suite_s": chief["fit_s"], "fit_plain_s": plain_chief["fit_s"],
            "val_suite_s": val(chief), "val_plain_s": val(plain_chief)}


def markdown(rows: list[dict]) -> str:
    lines = ["| strategy | replicas | counts sum / validation size | equals predict | what each process "
             "wrote | fit s, suite (plain) | validation pass s, suite / plain (ratio) |",
             "|---|---:|---|---|---|---|---|"]
    for r in rows:
        wrote = "<br>".join(f"{who}: {what}" for who, what in r["wrote"].items())
        lines.append(
            f"| {r['strategy']} | {r['replicas']} | {r['counts_sum']} / {r['validation_size']} "
            f"| {'yes' if r['equals_predict'] else 'no'} | {wrote} "
            f"| {r['fit_suite_s']:.1f} ({r['fit_plain_s']:.1f}) "
            f"| {r['val_suite_s']:.2f} / {r['val_plain_s']:.2f} "
            f"({r['val_suite_s'] / r['val_plain_s']:.3f}) |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", nargs="+", default=["default", "mirrored", "multiworker"])
    p.add_argument("--limit", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data-dir", default=os.environ.get("MONITOR_DATA_DIR"))
    p.add_argument("--out", help="write the raw numbers as JSON here (and the table beside it as .md)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", help=argparse.SUPPRESS)
    p.add_argument("--suite", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--logdir", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.data_dir = args.data_dir or None
    if args.worker:
        Path(args.worker_out).write_text(json.dumps(worker(args)))
        return
    rows, raw = [], {}
    for strategy in args.strategies:
        start = time.time()
        suite_runs = run(strategy, True, args)
        plain_runs = run(strategy, False, args)
        raw[strategy] = {"suite": suite_runs, "plain": plain_runs}
        rows.append(summarise(strategy, suite_runs, plain_runs))
        print(f"{strategy}: {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    table = markdown(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows, "raw": raw}, indent=1))
        Path(args.out).with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
