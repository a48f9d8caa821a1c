"""predict.py on real files: CIFAR-10 and MNIST test images saved as PNG and JPEG at other sizes.

A 1-epoch run of each (train.py subprocess); predictions compared with `model.predict` on
arrays prepared independently here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = os.environ.get("MONITOR_DATA_DIR")
pytestmark = pytest.mark.skipif(not DATA_DIR, reason="MONITOR_DATA_DIR is not set (real data sets)")
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    logdir = tmp_path_factory.mktemp("predict_runs")
    out = {}
    for dataset in ("cifar10", "mnist"):
        done = _cli("train.py", "--model", "simple", "--dataset", dataset, "--limit", "600", "--epochs", "1",
                    "--logdir", str(logdir), "--run-name", dataset, "--data-dir", DATA_DIR)
        assert done.returncode == 0, done.stderr[-2000:]
        out[dataset] = logdir / dataset
    return out


@pytest.fixture(scope="module")
def test_images() -> dict[str, np.ndarray]:
    with np.load(Path(DATA_DIR) / "cifar10.npz") as cifar, np.load(Path(DATA_DIR) / "mnist.npz") as mnist:
        return {"cifar10": cifar["x_test"][:8], "mnist": mnist["x_test"][:4]}


def _probs(run: Path, batch: np.ndarray) -> np.ndarray:
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    return model.predict(batch.astype(np.float32) / 255.0, verbose=0)


def _parse(line: str) -> tuple[str, str, float]:
    path, rest = line.split(": ", 1)
    name, pct = rest.split(" (", 1)
    return path, name, float(pct.split("%")[0]) / 100


def test_png_at_native_size_gives_exactly_model_predict(runs, test_images, tmp_path):
    x = test_images["cifar10"]
    paths = []
    for i, image in enumerate(x):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(image).save(paths[-1])
    done = _cli("predict.py", *map(str, paths), "--run", str(runs["cifar10"]))
    assert done.returncode == 0, done.stderr
    probs = _probs(runs["cifar10"], x)
    lines = done.stdout.splitlines()
    assert len(lines) == len(x)
    for line, path, p in zip(lines, paths, probs, strict=True):
        got_path, name, confidence = _parse(line)
        assert got_path == str(path) and "resized" not in line
        assert name == CIFAR[int(p.argmax())]
        assert confidence == pytest.approx(float(p.max()), abs=5e-4)  # printed to 0.1%
    top = json.loads(_cli("predict.py", str(paths[0]), "--run", str(runs["cifar10"]), "--json").stdout)
    assert top[0]["predictions"][0]["probability"] == pytest.approx(float(probs[0].max()), abs=1e-5)


def test_resized_jpeg_and_grey_images_are_prepared_as_in_training(runs, test_images, tmp_path):
    x = test_images["cifar10"]
    jpegs, bigs = [], []
    for i, image in enumerate(x):
        picture = Image.fromarray(image)
        jpegs.append(tmp_path / f"img{i}.jpg")
        picture.resize((50, 40), Image.Resampling.BICUBIC).save(jpegs[-1], quality=90)
        bigs.append(tmp_path / f"big{i}.png")
        picture.resize((64, 64), Image.Resampling.NEAREST).save(bigs[-1])
    done = _cli("predict.py", *map(str, bigs + jpegs), "--run", str(runs["cifar10"]), "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    # what the documented preparation gives: RGB, bilinear to 32x32, / 255
    prepared = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
                         for p in bigs + jpegs])
    probs = _probs(runs["cifar10"], prepared)
    for result, p in zip(results, probs, strict=True):
        assert result["predictions"][0]["class"] == CIFAR[int(p.argmax())]
        assert result["predictions"][0]["probability"] == pytest.approx(float(p.max()), abs=1e-5)
        assert result["resized_to"] == [32, 32] and result["resample"] == "bilinear"
    assert results[0]["resized_from"] == [64, 64] and results[-1]["resized_from"] == [50, 40]
    # within reason: a resized JPEG mostly keeps the class of the original array
    original = _probs(runs["cifar10"], x).argmax(1)
    kept = sum(r["predictions"][0]["class"] == CIFAR[c] for r, c in zip(results[8:], original, strict=True))
    assert kept >= 6
    # a grey file for the colour model, an RGB file for the grey (MNIST) model
    digits = test_images["mnist"]
    rgb_digits = []
    for i, digit in enumerate(digits):
        rgb_digits.append(tmp_path / f"digit{i}.png")
        Image.fromarray(np.stack([digit] * 3, axis=-1)).save(rgb_digits[-1])
    done = _cli("predict.py", *map(str, rgb_digits), "--run", str(runs["mnist"]), "--top", "3")
    assert done.returncode == 0, done.stderr
    probs = _probs(runs["mnist"], digits[..., None])
    for line, p in zip(done.stdout.splitlines(), probs, strict=True):
        assert "converted from RGB" in line
        ranked = [part.rsplit(" ", 1) for part in line.split(": ", 1)[1].split("  [")[0].split(", ")]
        assert [name for name, _ in ranked] == [str(c) for c in np.argsort(-p)[:3]]
        values = [float(v.rstrip("%")) for _, v in ranked]
        assert values == sorted(values, reverse=True)
    grey = tmp_path / "grey.png"
    Image.fromarray(x[0]).convert("L").save(grey)
    done = _cli("predict.py", str(grey), "--run", str(runs["cifar10"]))
    assert done.returncode == 0 and "converted from L" in done.stdout


def test_bad_files_get_one_line_each_and_exit_2_after_the_good_ones(runs, test_images, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(test_images["cifar10"][0]).save(good)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    done = _cli("predict.py", str(text), str(good), str(missing), str(empty), "--run", str(runs["cifar10"]))
    assert done.returncode == 2
    assert done.stdout.startswith(f"{good}: ") and len(done.stdout.splitlines()) == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in done.stderr
    assert f"{text}: not an image" in errors[0] and f"{missing}: no such file" in errors[1]
    assert str(empty) in errors[2]


def test_bad_run_or_model_is_one_line_exit_2(runs, tmp_path):
    for args, message in [
        (["--run", str(tmp_path / "nowhere")], "not a run directory"),
        (["--model-path", str(tmp_path / "none.keras")], "no model file"),
        ([], "give --run"),
    ]:
        done = _cli("predict.py", "x.png", *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    inputs = keras.Input((8, 8, 3))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    unsafe.save(tmp_path / "unsafe.keras")
    done = _cli("predict.py", "x.png", "--model-path", str(tmp_path / "unsafe.keras"))
    assert done.returncode == 2 and "never loaded" in done.stderr and "Traceback" not in done.stderr
