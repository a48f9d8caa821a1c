"""Classify image files with a trained run's model, prepared exactly as training prepared its inputs.

Used by `predict.py`. Each image is read with Pillow (PNG, JPEG, any size, colour or grey),
converted to the model's channels (grey for an MNIST model, RGB for a CIFAR-10 one), resized
to the model's input size when it differs (bilinear, said in the output), and scaled as the
recipe scales (to [0, 1], or raw 0..255 for a model that rescales inside itself).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from monitor.errors import MonitorError
from monitor.runs import MODEL_FILE, read_record

RESAMPLE = "bilinear"


@dataclass
class Classifier:
    model: object
    class_names: list[str]
    rescale_in_model: bool  # True: the model takes raw 0..255 pixels
    from_logits: bool
    input_shape: tuple[int, int, int]  # (H, W, C)
    notes: list[str] = field(default_factory=list)  # assumptions made without a run


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    resized_from: tuple[int, int] | None = None  # (width, height) before resizing
    converted_from: str | None = None  # Pillow mode before conversion
    error: str | None = None


def _run_class_names(run_dir: str, record: dict) -> list[str] | None:
    path = os.path.join(run_dir, "validation_confusion_matrices.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        names = json.loads(first).get("class_names") if first.strip() else None
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    except (OSError, ValueError):
        pass
    per_class = record.get("test_per_class")
    return list(per_class) if isinstance(per_class, dict) and per_class else None


def load_classifier(run_dir: str | None, model_path: str | None) -> Classifier:
    """The model (loaded with safe_mode=True) with the class names and scaling of its run."""
    from monitor.recipes import recipe
    from monitor.runs import load_model_safely

    record = None
    if run_dir is not None:
        record = read_record(run_dir)
        if record is None or not isinstance(record.get("flags"), dict):
            raise MonitorError(f"--run {run_dir}: not a run directory (no readable metrics.json); give a "
                               "directory train.py created")
    path = model_path or os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise MonitorError(f"no model file at {path}" + (" (the run has not finished: no model.keras yet)"
                                                          if model_path is None else ""))
    model = load_model_safely(path)
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else ()
    if len(shape) != 3 or any(d is None for d in shape) or shape[-1] not in (1, 3):
        raise MonitorError(f"{path}: the model's input {shape} is not an image (H, W, 1 or 3)")
    units = int(model.outputs[0].shape[-1])
    notes = []
    if record is not None:
        r = recipe(record["flags"]["model"])
        rescale, logits = r.rescale_in_model, r.from_logits
        names = _run_class_names(run_dir, record)
    else:
        rescale = any(type(layer).__name__ == "Rescaling" for layer in model.layers)
        logits = None
        names = None
        notes.append("no --run: pixels " + ("given raw (the model has a Rescaling layer)" if rescale
                                            else "scaled to [0, 1]") + ", softmax applied only to outputs "
                     "that are not already probabilities")
    if names is None or len(names) != units:
        names = [f"class {i}" for i in range(units)]
        notes.append("class names unknown: classes are numbered")
    return Classifier(model, names, rescale, logits, shape, notes)


def prepare_image(path: str, shape: tuple[int, int, int], rescale_in_model: bool):
    """(H, W, C) float32 input for one file, plus (resized_from, converted_from)."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            target = "L" if channels == 1 else "RGB"
            converted = image.convert(target) if mode != target else image.copy()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("a directory, not an image file") from None
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read (PNG, JPEG, ...)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read the image ({err})") from None
    resized_from = None
    if converted.size != (width, height):
        resized_from = converted.size
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(converted, dtype=np.float32).reshape(height, width, channels)
    if not rescale_in_model:
        pixels = pixels / 255.0
    return pixels, resized_from, (mode if mode != target else None)


def classify(classifier: Classifier, paths: list[str], top: int = 1,
             batch_size: int = 64) -> list[Prediction]:
    """One Prediction per path, in order; unreadable files get `error` and no classes."""
    results = [Prediction(path) for path in paths]
    ready = []
    for result in results:
        try:
            pixels, result.resized_from, result.converted_from = prepare_image(
                result.path, classifier.input_shape, classifier.rescale_in_model)
            ready.append((result, pixels))
        except ValueError as err:
            result.error = str(err)
    for start in range(0, len(ready), batch_size):
        chunk = ready[start:start + batch_size]
        outputs = np.asarray(classifier.model.predict(np.stack([p for _, p in chunk]), verbose=0),
                             dtype=np.float64)
        probs = _probabilities(outputs, classifier.from_logits)
        for (result, _), row in zip(chunk, probs, strict=True):
            order = np.argsort(-row, kind="stable")[:top]
            result.top = [(classifier.class_names[i], float(row[i])) for i in order]
    return results


def _probabilities(outputs: np.ndarray, from_logits: bool | None) -> np.ndarray:
    def softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    if from_logits is True:
        return softmax(outputs)
    if from_logits is False:
        return outputs
    is_dist = (outputs >= 0).all(axis=1) & (np.abs(outputs.sum(axis=1) - 1) < 1e-3)
    return np.where(is_dist[:, None], outputs, softmax(outputs))
