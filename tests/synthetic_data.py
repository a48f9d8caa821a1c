"""Small synthetic stand-ins for the real data files, so the end-to-end tests need no download.

`write(folder)` writes `mnist.npz` and `cifar10.npz` exactly as `monitor.data` reads them: uint8
arrays `x_train, y_train, x_test, y_test`, MNIST images 28x28 (no channel axis) with labels (N,),
CIFAR-10 images 32x32x3 with labels (N, 1), as the official files hold them; 10 classes each.

Every class has a fixed low-frequency pattern (a 4x4 grid of bright and dark blocks, per channel
for CIFAR-10) under per-pixel noise: a small CNN learns it within an epoch, and it survives
resizing and JPEG. Every class is equally frequent, so stratified subsets and splits work at any
`--limit` the tests use, and 10% of the labels are wrong, so no model is ever perfect (every
epoch has mistakes to show). Fixed seeds: the same bytes on every machine and every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = 10
#  (training images, test images); the largest --limit in the tests is 1,200 (mnist, test_resume)
SIZES = {"mnist": (1500, 300), "cifar10": (800, 300)}
SHAPES = {"mnist": (28, 28), "cifar10": (32, 32, 3)}
LABEL_NOISE = 0.1
GRID = 4  # pattern blocks per side
SEEDS = {"mnist": 1, "cifar10": 2}


def _templates(name: str) -> np.ndarray:
    """One pattern per class, values 0..1, shaped like an image (H, W[, C])."""
    shape = SHAPES[name]
    channels = shape[2:]
    rng = np.random.default_rng(1000 + SEEDS[name])
    coarse = rng.integers(0, 2, (CLASSES, GRID, GRID, *channels)).astype(np.float64)
    block = shape[0] // GRID
    full = coarse.repeat(block, axis=1).repeat(block, axis=2)
    return full


def _split(name: str, templates: np.ndarray, n: int, rng: np.random.Generator):
    truth = rng.permutation(np.arange(n) % CLASSES)  # every class n / 10 times
    noise = rng.random((n, *SHAPES[name]))
    x = np.rint(255 * (0.65 * templates[truth] + 0.35 * noise)).astype(np.uint8)
    labels = truth.copy()
    flipped = rng.choice(n, int(round(LABEL_NOISE * n)), replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, CLASSES, len(flipped))) % CLASSES
    labels = labels.astype(np.uint8)
    return x, labels if name == "mnist" else labels[:, None]


def arrays(name: str) -> dict[str, np.ndarray]:
    """The four arrays of the synthetic `name` ("mnist" or "cifar10")."""
    rng = np.random.default_rng(SEEDS[name])
    templates = _templates(name)
    n_train, n_test = SIZES[name]
    x_train, y_train = _split(name, templates, n_train, rng)
    x_test, y_test = _split(name, templates, n_test, rng)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write(folder: str | Path) -> Path:
    """Write mnist.npz and cifar10.npz into `folder` (created if need be); returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SIZES:
        np.savez(folder / f"{name}.npz", **arrays(name))
    return folder


if __name__ == "__main__":
    import sys

    print(write(sys.argv[1] if len(sys.argv) > 1 else "synthetic_data"))
