"""A multi-label run on data built from CIFAR-10: two images side by side, both labels set.

Each example is a 32x64 image, two CIFAR-10 images of different classes next to each other, with
a multi-hot target of 10 labels (exactly two set). The model is a small CNN ending in 10
independent sigmoid units trained with binary cross-entropy, and the monitoring suite watches it
as a multi-label head: per-label TP/FP/FN/TN, precision/recall/F1, exact-match and Hamming
accuracy, per-label PR curves, and the co-occurrence of missed and added labels.

    python examples/multilabel_pairs.py --logdir logs --pairs 20000 --epochs 8
    tensorboard --logdir logs
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pairs(x, y, n: int, seed: int):
    """`n` side-by-side pairs of images of two different classes, and their multi-hot targets."""
    import numpy as np

    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(x), n)
    second = rng.integers(0, len(x), n)
    same = y[first] == y[second]
    while same.any():  # redraw partners of the same class
        second[same] = rng.integers(0, len(x), int(same.sum()))
        same = y[first] == y[second]
    images = np.concatenate([x[first], x[second]], axis=2).astype("float32") / 255.0
    targets = np.zeros((n, 10), "float32")
    targets[np.arange(n), y[first]] = 1
    targets[np.arange(n), y[second]] = 1
    return images, targets


def model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((32, 64, 3)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.3), layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="sigmoid", name="labels"),
    ], name="pairs")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logdir", default="logs")
    p.add_argument("--run-name", default="cifar10-pairs-multilabel")
    p.add_argument("--data-dir", default=os.environ.get("MONITOR_DATA_DIR"))
    p.add_argument("--pairs", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args(argv)

    import keras

    from callbacks import monitoring_callbacks
    from monitor.data import CLASS_NAMES, load

    ds = load("cifar10", args.data_dir)
    x, y = pairs(ds.x_train, ds.y_train, args.pairs, seed=0)
    x_val, y_val = pairs(ds.x_test, ds.y_test, max(args.pairs // 4, 100), seed=1)
    net = model()
    net.compile("adam", "binary_crossentropy",
                metrics=[keras.metrics.BinaryAccuracy(name="hamming_accuracy")])
    run_dir = os.path.join(args.logdir, args.run_name)
    suite = monitoring_callbacks(CLASS_NAMES["cifar10"], run_dir, model=net)
    net.fit(x, y, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=128, callbacks=suite)
    print(f"Run directory: {run_dir}\nOpen it:       tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
