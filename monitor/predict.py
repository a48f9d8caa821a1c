"""Classify image files with a trained run's model, prepared exactly as training prepared its inputs.

Used by `predict.py`. Each image is read with Pillow (PNG, JPEG, any size, colour or grey), turned
upright by its EXIF orientation, converted to the model's channels (grey for an MNIST model, RGB
for a CIFAR-10 one), resized to the model's input size when it differs (bilinear, said in the
output), and scaled as the recipe scales (to [0, 1], or raw 0..255 for a model that rescales
inside itself). Only `.keras` files are loaded, with safe_mode=True: never H5 (loaded without
safe_mode by Keras) or anything else that could run code.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np

from monitor.errors import MonitorError
from monitor.limits import DISTRIBUTION_TOLERANCE
from monitor.recipes import model_input
from monitor.runfiles import matrices, model_file, record

RESAMPLE = "bilinear"
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")  # Pillow's modes of 16-bit grey PNGs


class Unreadable(ValueError):
    """An image file that cannot be classified; the message says what is wrong with it."""


@dataclass
class Classifier:
    model: object
    class_names: list[str]
    rescale_in_model: bool  # True: the model takes raw 0..255 pixels
    from_logits: bool | None  # None: unknown (no run, and a last layer that does not tell)
    input_shape: tuple[int, int, int]  # (H, W, C)
    notes: list[str] = field(default_factory=list)  # assumptions made without a run


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    resized_from: tuple[int, int] | None = None  # (width, height) before resizing
    converted_from: str | None = None  # Pillow mode before conversion
    exif_orientation: int | None = None  # EXIF orientation applied (2..8), None when upright
    error: str | None = None


def _run_class_names(run_dir: str, run: dict) -> list[str] | None:
    """The class names training used: the validation matrices' own, else metrics.json's
    `test_per_class` (in class order), else the data set's."""
    names = matrices.class_names(run_dir)
    if names:
        return names
    per_class = run.get("test_per_class")
    if isinstance(per_class, dict) and per_class:
        return list(per_class)
    from monitor.data import CLASS_NAMES

    return CLASS_NAMES.get(run["flags"].get("dataset"))


def _not_a_run(run_dir: str) -> MonitorError:
    if not os.path.exists(run_dir):
        return MonitorError(f"--run {run_dir}: no such directory")
    inside = record.runs_inside(run_dir)  # a comparison's parent folder holds runs
    hint = f"; it holds runs: {', '.join(inside)} (give one of them)" if inside else ""
    return MonitorError(f"--run {run_dir}: not a run directory (no readable {record.FILE}){hint}")


def _load_keras_file(path: str):
    """The model in `path`, a `.keras` file, loaded with safe_mode=True; MonitorError otherwise."""
    if not os.path.exists(path):
        raise MonitorError(f"no model file at {path}")
    if not os.path.isfile(path):
        raise MonitorError(f"{path} is not a file: give a .keras model file")
    if not path.endswith(".keras"):
        raise MonitorError(f"{path}: only .keras model files are loaded (H5 and other formats are refused: "
                           "Keras loads them without safe_mode)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as err:
        raise MonitorError(f"{path} is not a Keras model file (not a .keras zip archive: {err})") from None
    if "config.json" not in names:
        raise MonitorError(f"{path} is not a Keras model file (a zip archive without config.json)")
    try:
        return model_file.load(path)
    except MonitorError:
        raise
    except Exception as err:  # a damaged archive can fail anywhere in Keras or h5py
        first = str(err).splitlines()[0] if str(err) else ""
        raise MonitorError(f"cannot load {path}: {type(err).__name__}: {first}") from None


def _last_activation(model) -> str | None:
    layer = model.layers[-1] if getattr(model, "layers", None) else None
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def load_classifier(run_dir: str | None, model_path: str | None) -> Classifier:
    """The model (loaded with safe_mode=True) with the class names and scaling of its run."""
    from monitor.recipes import MODELS, recipe

    run = None
    if run_dir is not None:
        run = record.read(run_dir)
        if not record.is_run(run):
            raise _not_a_run(run_dir)
        if run["flags"].get("model") not in MODELS:
            raise MonitorError(f"--run {run_dir}: its {record.FILE} records no known model "
                               f"(flags.model is {run['flags'].get('model')!r})")
    path = model_path or model_file.path(run_dir)
    if model_path is None and not os.path.exists(path):
        raise MonitorError(f"no model file at {path} (the run has not finished: no {model_file.FILE} yet)")
    model = _load_keras_file(path)
    try:
        shape = tuple(model.inputs[0].shape[1:])
        units = int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise MonitorError(f"{path}: a model without one image input and one output") from None
    if len(shape) != 3 or any(d is None for d in shape) or shape[-1] not in (1, 3):
        raise MonitorError(f"{path}: the model's input {shape} is not an image (H, W, 1 or 3)")
    notes = []
    if run is not None:
        flags = run["flags"]
        if model_path is not None:  # another file: it must be this run's model, or its names lie
            from monitor.data import IMAGE_SHAPES

            expected = IMAGE_SHAPES.get(flags.get("dataset"))
            params = run.get("parameters")
            if expected is not None and shape != tuple(expected):
                raise MonitorError(f"{model_path} takes {_shape_text(shape)} images, but run {run_dir} "
                                   f"trained on {flags.get('dataset')} ({_shape_text(expected)}): not its "
                                   "model")
            if isinstance(params, int) and model.count_params() != params:
                raise MonitorError(f"{model_path} has {model.count_params():,} parameters, but run "
                                   f"{run_dir}'s {flags['model']} model has {params:,}: not its model")
        r = recipe(flags["model"])
        rescale, logits = r.rescale_in_model, r.from_logits
        names = _run_class_names(run_dir, run)
    else:
        rescale = any(type(layer).__name__ == "Rescaling" for layer in model.layers)
        activation = _last_activation(model)
        logits = {"softmax": False, "sigmoid": False, "linear": True}.get(activation)
        if logits is None:
            output = "softmax applied only to outputs that are not already probabilities (the last layer's " \
                     f"activation, {activation}, does not tell)"
        else:
            output = ("outputs taken as logits (a linear last layer): softmax applied" if logits
                      else "outputs taken as probabilities (a softmax last layer)")
        notes.append("no --run, so assumed: pixels " + ("given raw 0..255 (the model has a Rescaling "
                                                         "layer)" if rescale else "scaled to [0, 1]")
                     + f"; {output}")
        names = None
    classes = 2 if units == 1 else units  # one unit: a binary model, negative and positive
    if names is None or len(names) != classes:
        names = [f"class {i}" for i in range(classes)]
        notes.append(f"class names unknown (give --run): classes are numbered 0..{classes - 1}")
    return Classifier(model, names, rescale, logits, shape, notes)


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _to_8_bit(image):
    """16-bit grey (PNG) scaled to 8 bits, which Pillow's convert would clip instead."""
    from PIL import Image

    a = np.asarray(image).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8), mode="L")


def prepare_image(path: str, shape: tuple[int, int, int], rescale_in_model: bool):
    """(H, W, C) float32 input for one file, plus (resized_from, converted_from, exif_orientation).

    Raises Unreadable, saying what is wrong, for a file that is not a readable image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    height, width, channels = shape
    target = "L" if channels == 1 else "RGB"
    if os.path.isdir(path):
        raise Unreadable("a directory, not an image file")
    try:
        if os.path.getsize(path) == 0:
            raise Unreadable("an empty file (0 bytes), not an image")
        with warnings.catch_warnings():  # up to twice Pillow's MAX_IMAGE_PIXELS is decoded, quietly
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                orientation = opened.getexif().get(0x0112)
                image = ImageOps.exif_transpose(opened)  # a copy, loaded, upright as viewers show it
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except PermissionError:
        raise Unreadable("permission denied") from None
    except UnidentifiedImageError:
        raise Unreadable("not an image Pillow can read (PNG, JPEG, ...)") from None
    except Image.DecompressionBombError:
        raise Unreadable(f"too large to decode safely (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels, "
                         "Pillow's limit)") from None
    except Unreadable:
        raise
    except Exception as err:  # a damaged file fails in many ways inside the decoders
        raise Unreadable(f"cannot read the image ({type(err).__name__}: {err})") from None
    mode = image.mode
    if mode == "F":
        raise Unreadable("floating-point pixels (mode F): their range is unknown; save it as an 8-bit "
                         "PNG or JPEG")
    resized_from = None
    try:
        converted = _to_8_bit(image) if mode in _SIXTEEN_BIT else image
        if converted.mode != target:
            converted = converted.convert(target)
        if converted.size != (width, height):
            resized_from = converted.size
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    except Exception as err:  # an exotic mode Pillow cannot convert
        raise Unreadable(f"cannot convert its {mode} pixels to {target} "
                         f"({type(err).__name__}: {err})") from None
    pixels = np.asarray(converted, dtype=np.float32).reshape(height, width, channels)
    pixels = model_input(pixels, rescale_in_model)
    orientation = orientation if orientation in range(2, 9) else None
    return pixels, resized_from, (mode if mode != target else None), orientation


def classify(classifier: Classifier, paths: list[str], top: int = 1,
             batch_size: int = 64) -> list[Prediction]:
    """One Prediction per path, in order; unreadable files get `error` and no classes."""
    results = [Prediction(path) for path in paths]
    ready = []
    for result in results:
        try:
            pixels, result.resized_from, result.converted_from, result.exif_orientation = prepare_image(
                result.path, classifier.input_shape, classifier.rescale_in_model)
            ready.append((result, pixels))
        except Unreadable as err:
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
    """(N, C) class probabilities; a one-unit output (N, 1) becomes [1 - p, p]."""
    if outputs.shape[1] == 1:
        z = outputs[:, 0]
        in_range = bool(((z >= 0) & (z <= 1)).all())
        p = 1 / (1 + np.exp(-z)) if from_logits is True or (from_logits is None and not in_range) else z
        return np.stack([1 - p, p], axis=1)

    def softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    if from_logits is True:
        return softmax(outputs)
    if from_logits is False:
        return outputs
    is_dist = (outputs >= 0).all(axis=1) & (np.abs(outputs.sum(axis=1) - 1) < DISTRIBUTION_TOLERANCE)
    return np.where(is_dist[:, None], outputs, softmax(outputs))
