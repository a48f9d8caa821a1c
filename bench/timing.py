"""Small pieces shared by the benchmarks: running a worker process (the parents, which import no
Keras), and timing and building inside the workers (which do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_in_worker(script: str, args: list[str], label: str) -> dict:
    """Run `script --worker --run-dir D --worker-out F *args` in a fresh process (D and F in a
    temporary folder) and return the JSON it wrote to F; exits with its stderr if it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        command = [sys.executable, script, "--worker", "--run-dir", str(Path(tmp) / "run"),
                   "--worker-out", str(out), *args]
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"worker {label} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


@contextmanager
def baseline_tree(rev: str | None):
    """Commit `rev` checked out (`git worktree`, detached) into a temporary directory, removed on
    leaving; yields its path (None, and nothing checked out, when `rev` is None)."""
    if rev is None:
        yield None
        return
    tree = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def use_suite_of(root: str | None) -> None:
    """In a worker of a way "suite@REV": import REV's tree (`root`) before this one, and run from it
    (the drawing process starts from the working directory). Nothing when `root` is None."""
    if root:
        sys.path.insert(0, root)
        os.chdir(root)


def add_worker_arguments(parser) -> None:
    """The hidden flags of a worker process: those `run_in_worker` passes, and the way and class
    count its callers pass."""
    import argparse

    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--way", help=argparse.SUPPRESS)
    parser.add_argument("--num-classes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)


def served_as_worker(args, worker) -> bool:
    """In a worker process (`--worker`): write `worker(args)` as JSON where `run_in_worker` reads it,
    and say so (True); False in the parent."""
    if not args.worker:
        return False
    Path(args.worker_out).write_text(json.dumps(worker(args)))
    return True


def timed(fn, totals: dict, key):
    """`fn`, adding the wall seconds each call takes to `totals[key]` (raised or not)."""
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start
    return call


def random_classifier(model_name: str, num_classes: int, images: int):
    """(x, y, model): `images` random 32x32x3 images with random labels (one-hot where the recipe's
    loss wants them) and the recipe's layer stack with a `num_classes`-unit head, compiled; seed 0."""
    import keras
    import numpy as np

    from monitor.models import build, compile_model
    from monitor.recipes import recipe

    rng = np.random.default_rng(0)
    x = rng.random((images, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, num_classes, images)
    if recipe(model_name).one_hot_labels:  # the recipe's categorical cross-entropy
        y = keras.utils.to_categorical(y, num_classes).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = build(model_name, (32, 32, 3), num_classes)
    compile_model(model, model_name, 0.001)
    return x, y, model


def validation_timer(seconds: list[float], training: list[float] | None = None,
                     ends: list[float] | None = None):
    """A Keras callback appending each validation pass's wall seconds to `seconds` (and, given
    `training`, each epoch's training phase, from the epoch's start to its validation pass; given
    `ends`, the `time.perf_counter()` at which each validation pass ended)."""
    import keras

    class ValidationTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()

        def on_test_begin(self, logs=None):
            self._start = time.perf_counter()
            if training is not None and getattr(self, "_epoch_start", None) is not None:
                training.append(self._start - self._epoch_start)
                self._epoch_start = None

        def on_test_end(self, logs=None):
            now = time.perf_counter()
            seconds.append(now - self._start)
            if ends is not None:
                ends.append(now)

    return ValidationTimer()


def add_tf_data_autotune_argument(parser) -> None:
    """`--tf-data-autotune {off,on}` (default off): whether a benchmark's fits keep tf.data's
    autotuning (see `tf_data_autotune_off`)."""
    parser.add_argument("--tf-data-autotune", choices=("off", "on"), default="off",
                        help="tf.data's autotuning of Keras' input pipeline, in every fit (default: off; see "
                        "bench.timing.tf_data_autotune_off: its random waits of seconds at epoch starts "
                        "bury 5%% differences)")


def tf_data_autotune_off() -> None:
    """Keras' own input pipeline for the arrays, with tf.data's autotuning off, in every way alike.

    Measured (TensorFlow 2.21, Keras 3.15, this machine): with autotuning on, about one epoch in four
    (52 of 208 later epochs in the plain fits of the earlier runs, 44 of 208 with Keras' TensorBoard
    callback, 52 of 238 with the suite) starts after a 1.8-3.9 s wait, the training thread in
    tf.data's `~RootDataset::Iterator` waiting for a thread of the last epoch's iterator while no
    thread of the process uses the CPU. Waits of seconds, at random, in a 9-second fit
    bury any 5% difference; with autotuning off, none in 14 plain epochs, and fits within 7.2-8.3 s
    where they spread over 7.0-11.2 s. `--tf-data-autotune on` keeps the default pipeline."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters import array_data_adapter

    keras_dataset = array_data_adapter.ArrayDataAdapter.get_tf_dataset

    def without_autotuning(self):
        options = tf.data.Options()
        options.autotune.enabled = False
        return keras_dataset(self).with_options(options)

    array_data_adapter.ArrayDataAdapter.get_tf_dataset = without_autotuning
