"""Small shared pieces for the tests: tiny models and event-file reading."""

from __future__ import annotations

import os

import keras
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

NAMES = ["cat", "dog", "bird"]


def tiny_data(n=240, shape=(8, 8, 3), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.random((n, *shape), dtype=np.float32) * 0.5
    x[..., 0] += y[:, None, None] / classes  # learnable signal
    return x, y


def tiny_model(shape=(8, 8, 3), classes=3, logits=False, one_hot=False, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(classes, activation=None if logits else "softmax", name="out"),
    ])
    loss_cls = (keras.losses.CategoricalCrossentropy if one_hot
                else keras.losses.SparseCategoricalCrossentropy)
    model.compile("adam", loss_cls(from_logits=logits), metrics=["accuracy"])
    return model


def read_tags(run_dir: str) -> dict[str, dict[str, list[int]]]:
    """{subdir: {tag: [steps]}} for every event-file directory directly under run_dir."""
    out = {}
    for sub in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, sub)
        if not os.path.isdir(path) or not any(f.startswith("events.") for f in os.listdir(path)):
            continue
        acc = EventAccumulator(path, size_guidance={"tensors": 0, "scalars": 0, "histograms": 0,
                                                    "images": 0})
        acc.Reload()
        out[sub] = {t: [e.step for e in acc.Tensors(t)] for t in acc.Tags()["tensors"]}
        acc_tags = acc.Tags()
        for kind in ("scalars", "histograms", "images"):
            for t in acc_tags.get(kind, []):
                out[sub][t] = [e.step for e in getattr(acc, kind.capitalize())(t)]
    return out


def accumulator(path: str) -> EventAccumulator:
    acc = EventAccumulator(path, size_guidance={"tensors": 0})
    acc.Reload()
    return acc
