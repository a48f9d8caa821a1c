"""predict.py on real files: CIFAR-10 and MNIST test images (of the synthetic stand-ins,
tests/synthetic_data.py) saved as PNG and JPEG, at the model's size
and at others, colour, grey and 16-bit grey, EXIF-rotated, and files that are not images at all.

Two 1-epoch runs (train.py subprocesses): `simple` on CIFAR-10 (pixels scaled to [0, 1], softmax
outputs) and `tutorial` on MNIST (raw 0..255 pixels into its Rescaling layer, logits out). Every
prediction is compared with `model.predict` on arrays prepared here by training's own
`prepare_arrays`, with softmax applied to the tutorial's logits.

"Within reason" for lossy, resized files: the exact comparison is with the documented preparation
of the same file (Pillow decode, RGB, bilinear to 32x32, training's scaling), to 1e-5; compared with
the original 32x32 array, a 50x40 JPEG (bicubic up, quality 90) must keep the class of at least 6 of 8
images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from monitor.recipes import recipe
from runner.inputs import prepare_arrays

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MODELS = {"cifar10": "simple", "mnist": "tutorial"}


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1"})


def _predict(*args) -> subprocess.CompletedProcess:
    return _cli("predict.py", *map(str, args))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_data_dir) -> dict[str, Path]:
    logdir = tmp_path_factory.mktemp("predict_runs")
    out = {}
    for dataset, model in MODELS.items():
        done = _cli("train.py", "--model", model, "--dataset", dataset, "--limit", "600", "--epochs", "1",
                    "--no-suite", "--logdir", str(logdir), "--run-name", dataset,
                    "--data-dir", synthetic_data_dir)
        assert done.returncode == 0, done.stderr[-2000:]
        out[dataset] = logdir / dataset
    return out


@pytest.fixture(scope="module")
def test_images(synthetic_data_dir) -> dict[str, np.ndarray]:
    folder = synthetic_data_dir
    with np.load(folder / "cifar10.npz") as cifar, np.load(folder / "mnist.npz") as mnist:
        return {"cifar10": cifar["x_test"][:8], "mnist": mnist["x_test"][:4]}


def _probs(runs: dict[str, Path], dataset: str, batch: np.ndarray) -> np.ndarray:
    """Class probabilities of `batch` (uint8, N x H x W x C) as training would have fed it."""
    model = keras.saving.load_model(runs[dataset] / "model.keras", safe_mode=True)
    x, _ = prepare_arrays(batch, np.zeros(len(batch), dtype=np.int64), MODELS[dataset], 10)
    out = model.predict(x, verbose=0).astype(np.float64)
    if recipe(MODELS[dataset]).from_logits:
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def _ranked(line: str) -> tuple[str, list[tuple[str, float]]]:
    """'path: a 50.0%, b 20.0%  [notes]' or 'path: a (50.0%)  [notes]' as (path, [(class, p), ...])."""
    path, rest = line.split(": ", 1)
    rest = rest.split("  [")[0]
    if rest.endswith("%)"):
        name, pct = rest[:-2].rsplit(" (", 1)
        return path, [(name, float(pct) / 100)]
    return path, [(name, float(pct.rstrip("%")) / 100)
                  for name, pct in (part.rsplit(" ", 1) for part in rest.split(", "))]


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_png_at_native_size_gives_exactly_model_predict(runs, test_images, tmp_path):
    x = test_images["cifar10"]
    paths = []
    for i, image in enumerate(x):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(image).save(paths[-1])
    probs = _probs(runs, "cifar10", x)

    done = _predict(*paths, "--run", runs["cifar10"])
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(x)
    for line, path, p in zip(lines, paths, probs, strict=True):
        got_path, [(name, confidence)] = _ranked(line)
        assert got_path == str(path) and "[" not in line  # nothing resized or converted
        assert name == CIFAR[int(p.argmax())]
        assert confidence == pytest.approx(float(p.max()), abs=5.1e-4)  # printed to 0.1%

    done = _predict(*paths, "--run", runs["cifar10"], "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["path"] for r in results] == list(map(str, paths))
    for result, p in zip(results, probs, strict=True):
        assert result["error"] is None and result["resized_from"] is None
        [best] = result["predictions"]
        assert best["class"] == CIFAR[int(p.argmax())]
        assert best["probability"] == pytest.approx(float(p.max()), abs=1e-5)

    done = _predict(*paths, "--run", runs["cifar10"], "--top", "3")
    assert done.returncode == 0, done.stderr
    for line, p in zip(done.stdout.splitlines(), probs, strict=True):
        _, ranked = _ranked(line)
        assert [name for name, _ in ranked] == [CIFAR[i] for i in np.argsort(-p, kind="stable")[:3]]
        values = [v for _, v in ranked]
        assert len(values) == 3 and values == sorted(values, reverse=True)


def test_resized_png_and_jpeg_are_prepared_as_documented(runs, test_images, tmp_path):
    x = test_images["cifar10"]
    jpegs, bigs = [], []
    for i, image in enumerate(x):
        picture = Image.fromarray(image)
        jpegs.append(tmp_path / f"img{i}.jpg")
        picture.resize((50, 40), Image.Resampling.BICUBIC).save(jpegs[-1], quality=90)
        bigs.append(tmp_path / f"big{i}.png")
        picture.resize((64, 64), Image.Resampling.NEAREST).save(bigs[-1])
    done = _predict(*bigs, *jpegs, "--run", runs["cifar10"], "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    # the documented preparation of the same files: RGB, bilinear to 32x32, then training's scaling
    prepared = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
                         for p in bigs + jpegs])
    probs = _probs(runs, "cifar10", prepared)
    for result, p in zip(results, probs, strict=True):
        assert result["predictions"][0]["class"] == CIFAR[int(p.argmax())]
        assert result["predictions"][0]["probability"] == pytest.approx(float(p.max()), abs=1e-5)
        assert result["resized_to"] == [32, 32] and result["resample"] == "bilinear"
    assert results[0]["resized_from"] == [64, 64] and results[-1]["resized_from"] == [50, 40]
    # within reason: a resized JPEG mostly keeps the class of the original array
    original = _probs(runs, "cifar10", x).argmax(1)
    kept = sum(r["predictions"][0]["class"] == CIFAR[c] for r, c in zip(results[8:], original, strict=True))
    assert kept >= 6
    done = _predict(jpegs[0], "--run", runs["cifar10"])
    assert done.stdout.rstrip().endswith("  [resized 50x40 -> 32x32, bilinear]"), done.stdout


def test_grey_colour_16_bit_and_exif_rotated_files(runs, test_images, tmp_path):
    # RGB files for the grey MNIST model, whose recipe feeds raw pixels and turns logits into softmax
    digits = test_images["mnist"]
    rgb_digits = []
    for i, digit in enumerate(digits):
        rgb_digits.append(tmp_path / f"digit{i}.png")
        Image.fromarray(np.stack([digit] * 3, axis=-1)).save(rgb_digits[-1])
    done = _predict(*rgb_digits, "--run", runs["mnist"], "--top", "3", "--json")
    assert done.returncode == 0, done.stderr
    probs = _probs(runs, "mnist", digits[..., None])
    for result, p in zip(json.loads(done.stdout), probs, strict=True):
        assert result["converted_from"] == "RGB"
        top = np.argsort(-p, kind="stable")[:3]
        assert [c["class"] for c in result["predictions"]] == [str(i) for i in top]
        assert [c["probability"] for c in result["predictions"]] == pytest.approx(p[top].tolist(), abs=1e-5)

    # grey files for the colour CIFAR model; 16-bit grey is scaled to 8 bits, not clipped
    x = test_images["cifar10"]
    grey, grey16 = tmp_path / "grey.png", tmp_path / "grey16.png"
    grey_pixels = np.asarray(Image.fromarray(x[0]).convert("L"))
    Image.fromarray(grey_pixels).save(grey)
    Image.fromarray(grey_pixels.astype(np.uint16) * 257).save(grey16)
    # an upright 40x32 picture stored rotated, with EXIF orientation 6 ("rotate 90 clockwise to show")
    upright, rotated = tmp_path / "upright.png", tmp_path / "rotated.png"
    picture = Image.fromarray(x[1]).resize((40, 32), Image.Resampling.BILINEAR)
    picture.save(upright)
    exif = Image.Exif()
    exif[0x0112] = 6
    picture.transpose(Image.Transpose.ROTATE_90).save(rotated, exif=exif)
    done = _predict(grey, grey16, upright, rotated, "--run", runs["cifar10"], "--json")
    assert done.returncode == 0, done.stderr
    r_grey, r_grey16, r_upright, r_rotated = json.loads(done.stdout)
    expected = _probs(runs, "cifar10", np.repeat(grey_pixels[None, ..., None], 3, axis=-1))[0]
    assert r_grey["converted_from"] == "L" and r_grey16["converted_from"] == "I;16"
    for r in (r_grey, r_grey16):
        assert r["predictions"][0]["class"] == CIFAR[int(expected.argmax())]
        assert r["predictions"][0]["probability"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert r_rotated["exif_orientation"] == 6 and r_rotated["resized_from"] == [40, 32]
    assert r_rotated["predictions"] == r_upright["predictions"]
    done = _predict(grey, rotated, "--run", runs["cifar10"])
    first, second = done.stdout.splitlines()
    assert first.endswith("  [converted from L]")
    assert second.endswith("  [resized 40x32 -> 32x32, bilinear; turned upright (EXIF orientation 6)]")


def test_bad_files_get_one_line_each_and_exit_2_after_the_good_ones(runs, test_images, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(test_images["cifar10"][0]).save(good)
    text = tmp_path / "x.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    missing = tmp_path / "missing.png"
    done = _predict(text, good, missing, empty, tmp_path, truncated, "--run", runs["cifar10"])
    assert done.returncode == 2
    assert done.stdout.startswith(f"{good}: ") and len(done.stdout.splitlines()) == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 5 and "Traceback" not in done.stderr, done.stderr
    assert errors[0] == f"predict.py: {text}: not an image Pillow can read (PNG, JPEG, ...)"
    assert errors[1] == f"predict.py: {missing}: no such file"
    assert errors[2] == f"predict.py: {empty}: an empty file (0 bytes), not an image"
    assert errors[3] == f"predict.py: {tmp_path}: a directory, not an image file"
    assert errors[4].startswith(f"predict.py: {truncated}: cannot read the image (")
    done = _predict(text, missing, "--run", runs["cifar10"], "--json")  # nothing readable: still JSON
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 2
    assert [r["error"] for r in json.loads(done.stdout)] == ["not an image Pillow can read (PNG, JPEG, ...)",
                                                             "no such file"]


def test_bad_run_or_model_is_one_line_exit_2(runs, tmp_path):
    text_model = tmp_path / "text.keras"
    text_model.write_text("not a model")
    empty_zip = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("notes.txt", "no config.json")
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "metrics.json").write_text((runs["cifar10"] / "metrics.json").read_text())
    inputs = keras.Input((8, 8, 3))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    unsafe.save(tmp_path / "unsafe.keras")
    for args, message in [
        (["--run", tmp_path / "nowhere"], "no such directory"),
        (["--run", runs["cifar10"].parent], "it holds runs: cifar10, mnist (give one of them)"),
        (["--run", unfinished], "the run has not finished"),
        (["--model-path", tmp_path / "none.keras"], "no model file"),
        (["--model-path", text_model], "is not a Keras model file (not a .keras zip archive"),
        (["--model-path", empty_zip], "is not a Keras model file (a zip archive without config.json)"),
        (["--model-path", h5], "only .keras model files are loaded"),
        (["--model-path", tmp_path / "unsafe.keras"], "never loaded"),
        (["--run", runs["cifar10"], "--model-path", runs["mnist"] / "model.keras"], "not its model"),
        ([], "give --run"),
    ]:
        done = _predict("x.png", *args)
        assert done.returncode == 2 and message in _one_line(done.stderr), (args, done.stderr)


def test_model_path_without_run_says_what_it_assumes(runs, test_images, tmp_path):
    png = tmp_path / "img.png"
    Image.fromarray(test_images["cifar10"][0]).save(png)
    done = _predict(png, "--model-path", runs["cifar10"] / "model.keras", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "predict.py: note: no --run, so assumed: pixels scaled to [0, 1]; outputs taken as probabilities "
        "(a softmax last layer)",
        "predict.py: note: class names unknown (give --run): classes are numbered 0..9",
    ]
    p = _probs(runs, "cifar10", test_images["cifar10"][:1])[0]
    [best] = json.loads(done.stdout)[0]["predictions"]
    assert best["class"] == f"class {int(p.argmax())}"
    assert best["probability"] == pytest.approx(float(p.max()), abs=1e-5)
