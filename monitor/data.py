"""Loading, validating, subsetting and splitting the image datasets.

Arrays returned here are raw: x is uint8 (N, H, W, C), y is int64 (N,).
Scaling to [0, 1] happens elsewhere, exactly once.

Where the files come from, in order: the `data_dir` argument, then
$MONITOR_DATA_DIR, then Keras' own download. A data dir that is given but
lacks the files is an error, never a reason to download.

Accepted files in a data dir:
  cifar10: cifar10.npz, else cifar-10-python.tar.gz (official tarball),
           else the extracted folder cifar-10-batches-py/
  mnist:   mnist.npz (ours and Keras' share keys x_train, y_train, x_test, y_test)

Pixel arrays must be uint8, or another integer dtype whose values all lie in
0..255 (converted to uint8); float or other dtypes are refused. Labels must be
an integer dtype with values in [0, number of classes).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from monitor.errors import DataError

DATASETS = ("cifar10", "mnist")
CLASS_NAMES = {
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
    "mnist": [str(i) for i in range(10)],
}
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "mnist": (28, 28, 1)}
KERAS_SOURCE = "keras.datasets download"
ENV_VAR = "MONITOR_DATA_DIR"

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CIFAR_TARBALL = "cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"
_MAX_BATCH_BYTES = 64 * 1024 * 1024  # an official batch is about 31 MB
_HINTS = {
    "cifar10": (
        "put cifar10.npz (arrays x_train, y_train, x_test, y_test) or "
        "cifar-10-python.tar.gz in a folder and pass --data-dir DIR or set "
        "MONITOR_DATA_DIR=DIR"
    ),
    "mnist": (
        "put mnist.npz (arrays x_train, y_train, x_test, y_test) in a folder "
        "and pass --data-dir DIR or set MONITOR_DATA_DIR=DIR"
    ),
}
_ACCEPTED = {
    "cifar10": f"cifar10.npz, {_CIFAR_TARBALL} or {_CIFAR_DIR}/",
    "mnist": "mnist.npz",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: raw uint8 images (N, H, W, C) and int64 labels (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str  # absolute path of the file/dir read, or KERAS_SOURCE


def _one_line(err: BaseException) -> str:
    """The exception as one short line."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]


def resolve_data_dir(data_dir: str | None) -> str | None:
    """The argument, else $MONITOR_DATA_DIR (empty = unset), else None."""
    if data_dir is not None:
        return os.path.expanduser(data_dir)
    env = os.environ.get(ENV_VAR, "")
    return os.path.expanduser(env) if env else None


# --------------------------------------------------------------------------
# validation


def _check_x(x: Any, name: str, what: str, where: str) -> np.ndarray:
    """Validate an image array; return it as uint8 (N, H, W, C)."""
    if not isinstance(x, np.ndarray):
        raise DataError(f"{where}: {what} is not an array")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(
            f"{where}: {what} is mis-shaped {tuple(x.shape)}; expected (N, H, W) "
            "or (N, H, W, C) with C 1 or 3"
        )
    expected = IMAGE_SHAPES[name]
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"{where}: {what} is mis-shaped {tuple(x.shape)}; {name} images must "
            f"be {'x'.join(map(str, expected))}"
        )
    if x.shape[0] == 0:
        raise DataError(f"{where}: {what} holds no images")
    if x.dtype != np.uint8:
        if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
            raise DataError(
                f"{where}: {what} has dtype {x.dtype}; expected uint8 pixels 0..255"
            )
        if int(x.min()) < 0 or int(x.max()) > 255:
            raise DataError(f"{where}: {what} has pixel values outside 0..255")
        x = x.astype(np.uint8)
    return x


def _check_y(y: Any, n: int, num_classes: int, what: str, where: str) -> np.ndarray:
    """Validate a label array; return it as int64 (N,)."""
    if not isinstance(y, np.ndarray):
        raise DataError(f"{where}: {what} is not an array")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DataError(
            f"{where}: {what} is mis-shaped {tuple(y.shape)}; expected (N,) or (N, 1)"
        )
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {what} has dtype {y.dtype}; expected integer labels")
    if len(y) != n:
        raise DataError(f"{where}: {what} has {len(y)} labels but there are {n} images")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(
            f"{where}: {what} has labels outside 0..{num_classes - 1} "
            f"(found {int(y.min())}..{int(y.max())})"
        )
    return y.astype(np.int64)


def _make_dataset(name: str, arrays: dict[str, Any], source: str, where: str) -> Dataset:
    """Validate the four arrays and wrap them in a Dataset."""
    num_classes = len(CLASS_NAMES[name])
    x_train = _check_x(arrays["x_train"], name, "x_train", where)
    x_test = _check_x(arrays["x_test"], name, "x_test", where)
    y_train = _check_y(arrays["y_train"], len(x_train), num_classes, "y_train", where)
    y_test = _check_y(arrays["y_test"], len(x_test), num_classes, "y_test", where)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=list(CLASS_NAMES[name]),
        source=source,
    )


# --------------------------------------------------------------------------
# readers


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The four arrays of an npz file, loaded without pickle."""
    expected = ", ".join(_NPZ_KEYS)
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:  # truncated zip, not a zip, pickled data, ...
        raise DataError(f"cannot read {path}: {_one_line(err)}") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path} is not an .npz archive; expected arrays {expected}")
    with npz:
        missing = [k for k in _NPZ_KEYS if k not in npz.files]
        if missing:
            raise DataError(
                f"{path} lacks array(s) {', '.join(missing)}; expected {expected}"
            )
        try:
            return {k: npz[k] for k in _NPZ_KEYS}
        except Exception as err:  # corrupt member, object arrays, ...
            raise DataError(f"cannot read {path}: {_one_line(err)}") from err


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` restricted to what protocol-2 pickles of bytes need."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode other than str->latin1")
    return obj.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy arrays (and bytes), nothing else."""

    def __init__(self, data: bytes, origin: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._origin = origin

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
            # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(s, "latin1")
            ("_codecs", "encode"): lambda: _latin1_encode,
        }
        getter = allowed.get((module, name))
        if getter is None:
            raise DataError(
                f"refusing to unpickle {module}.{name} from {self._origin}: "
                "not a CIFAR-10 batch"
            )
        return getter()


def _parse_cifar_batch(data: bytes, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) of one official CIFAR batch."""
    try:
        batch = _CifarUnpickler(data, origin).load()
    except DataError:
        raise
    except Exception as err:
        raise DataError(
            f"cannot unpickle {origin}: {_one_line(err)}; not a CIFAR-10 batch"
        ) from err
    if not isinstance(batch, dict):
        raise DataError(f"{origin} is not a CIFAR-10 batch (not a dict)")
    pixels = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if pixels is None or labels is None:
        raise DataError(f"{origin} is not a CIFAR-10 batch (no data/labels entries)")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise DataError(f"{origin}: data is not a uint8 array; not a CIFAR-10 batch")
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{origin}: data is mis-shaped {tuple(pixels.shape)}; expected (N, 3072)"
        )
    if isinstance(labels, np.ndarray):
        if labels.dtype == object:
            raise DataError(f"{origin}: labels are an object array; not a CIFAR-10 batch")
        labels_arr = labels.reshape(-1)
    elif isinstance(labels, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in labels
    ):
        labels_arr = np.asarray(labels, dtype=np.int64)
    else:
        raise DataError(f"{origin}: labels are not a list of integers")
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels_arr


def _join_batches(
    batches: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Concatenate the five training batches; keep the test batch."""
    return {
        "x_train": np.concatenate([batches[b][0] for b in _CIFAR_TRAIN_BATCHES]),
        "y_train": np.concatenate([batches[b][1] for b in _CIFAR_TRAIN_BATCHES]),
        "x_test": batches[_CIFAR_TEST_BATCH][0],
        "y_test": batches[_CIFAR_TEST_BATCH][1],
    }


def _read_cifar_tarball(path: str) -> dict[str, np.ndarray]:
    """The official cifar-10-python.tar.gz, read in memory (nothing extracted)."""
    wanted = {f"{_CIFAR_DIR}/{b}": b for b in (*_CIFAR_TRAIN_BATCHES, _CIFAR_TEST_BATCH)}
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if name not in wanted:
                    continue
                origin = f"{path}:{name}"
                batch = wanted[name]
                if batch in batches:
                    raise DataError(f"{path} holds {name} twice; not the official tarball")
                if not member.isfile():
                    raise DataError(f"{origin} is not a regular file; refusing it")
                if member.size > _MAX_BATCH_BYTES:
                    raise DataError(
                        f"{origin} is {member.size} bytes, too big for a CIFAR-10 batch"
                    )
                handle = tar.extractfile(member)
                if handle is None:
                    raise DataError(f"cannot read {origin}")
                batches[batch] = _parse_cifar_batch(handle.read(), origin)
    except DataError:
        raise
    except Exception as err:  # not gzip, truncated, corrupt tar, ...
        raise DataError(f"cannot read {path}: {_one_line(err)}") from err
    missing = [n for n, b in wanted.items() if b not in batches]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; not the official tarball")
    return _join_batches(batches)


def _read_cifar_dir(path: str) -> dict[str, np.ndarray]:
    """The extracted cifar-10-batches-py/ folder."""
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for batch in (*_CIFAR_TRAIN_BATCHES, _CIFAR_TEST_BATCH):
        file = os.path.join(path, batch)
        if not os.path.isfile(file):
            raise DataError(
                f"{path} lacks {batch}; expected data_batch_1..5 and test_batch there"
            )
        size = os.path.getsize(file)
        if size > _MAX_BATCH_BYTES:
            raise DataError(f"{file} is {size} bytes, too big for a CIFAR-10 batch")
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except OSError as err:
            raise DataError(f"cannot read {file}: {_one_line(err)}") from err
        batches[batch] = _parse_cifar_batch(data, file)
    return _join_batches(batches)


def _load_from_dir(name: str, data_dir: str) -> Dataset:
    """Load `name` from the first accepted file found in `data_dir`."""
    root = os.path.abspath(data_dir)
    if not os.path.isdir(root):
        raise DataError(
            f"data dir {root} does not exist; create it holding {_ACCEPTED[name]} "
            f"or pass another --data-dir / {ENV_VAR}"
        )
    npz_path = os.path.join(root, f"{name}.npz")
    if os.path.isfile(npz_path):
        return _make_dataset(name, _read_npz(npz_path), npz_path, npz_path)
    if name == "cifar10":
        tar_path = os.path.join(root, _CIFAR_TARBALL)
        if os.path.isfile(tar_path):
            return _make_dataset(name, _read_cifar_tarball(tar_path), tar_path, tar_path)
        dir_path = os.path.join(root, _CIFAR_DIR)
        if os.path.isdir(dir_path):
            return _make_dataset(name, _read_cifar_dir(dir_path), dir_path, dir_path)
    raise DataError(
        f"no {name} data in {root}: expected {_ACCEPTED[name]} there (arrays "
        f"{', '.join(_NPZ_KEYS)} for .npz)"
    )


def _load_from_keras(name: str) -> Dataset:
    """Keras' own download (cached under ~/.keras/datasets)."""
    try:
        import keras

        loader = keras.datasets.cifar10 if name == "cifar10" else keras.datasets.mnist
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as err:
        raise DataError(
            f"no {name} data found and the download failed ({_one_line(err)}); "
            f"{_HINTS[name]}"
        ) from err
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _make_dataset(name, arrays, KERAS_SOURCE, KERAS_SOURCE)


def load(name: str, data_dir: str | None = None) -> Dataset:
    """Load dataset `name` from `data_dir`, $MONITOR_DATA_DIR or Keras' download."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    resolved = resolve_data_dir(data_dir)
    if resolved is None:
        return _load_from_keras(name)
    try:
        return _load_from_dir(name, resolved)
    except DataError as err:
        if data_dir is None:  # say where the folder came from
            raise DataError(f"{err} (the folder is ${ENV_VAR})") from None
        raise


# --------------------------------------------------------------------------
# subsets and splits


def stratified_subset(
    x: np.ndarray, y: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced random subset of `n` samples (inputs unchanged if n >= len)."""
    if len(x) != len(y):
        raise DataError(f"cannot subset: {len(x)} images but {len(y)} labels")
    if n >= len(x):
        return x, y
    num_classes = len(np.unique(y))
    if n <= 0:
        raise DataError(f"cannot take a subset of {n} samples; use a positive number")
    if n < num_classes:
        raise DataError(
            f"cannot take a stratified subset of {n} samples from {num_classes} "
            f"classes; use at least {num_classes}"
        )
    try:
        x_sub, _, y_sub, _ = train_test_split(
            x, y, train_size=n, stratify=y, random_state=seed
        )
    except ValueError as err:
        raise DataError(
            f"cannot take a stratified subset of {n} from {len(x)} samples: "
            f"{_one_line(err)}"
        ) from err
    return x_sub, y_sub


def split(
    x: np.ndarray, y: np.ndarray, val_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled stratified hold-out: (x_train, y_train, x_val, y_val)."""
    if isinstance(val_split, bool) or not (0.0 < float(val_split) < 1.0):
        raise DataError(f"validation split must be between 0 and 1 (exclusive), got {val_split}")
    if len(x) != len(y):
        raise DataError(f"cannot split: {len(x)} images but {len(y)} labels")
    try:
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=float(val_split), stratify=y, random_state=seed, shuffle=True
        )
    except ValueError as err:
        raise DataError(
            f"cannot split {len(x)} samples with validation split {val_split}: "
            f"{_one_line(err)}; use more samples or another split"
        ) from err
    return x_train, y_train, x_val, y_val


# --------------------------------------------------------------------------
# provenance


def _hash_file(path: str, digest: Any) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def file_sha256(path: str) -> str | None:
    """sha256 of a file, or of a directory's files' contents in sorted-name order.

    None if `path` is not on disk.
    """
    if not os.path.exists(path):
        return None
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for entry in sorted(os.listdir(path)):
            file = os.path.join(path, entry)
            if os.path.isfile(file):
                _hash_file(file, digest)
    else:
        _hash_file(path, digest)
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Splits:
    """A data set's training/validation hold-out; the test split stays in `dataset`."""

    dataset: Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def select_classes(ds: Dataset, classes) -> Dataset:
    """Only the images of `classes` (names of `ds`), relabelled 0..k-1 in the order given."""
    unknown = [c for c in classes if c not in ds.class_names]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise DataError(f"--classes {' '.join(classes)}: give at least 2 different classes of "
                        f"{ds.name} ({', '.join(ds.class_names)})")
    lookup = np.full(len(ds.class_names), -1, np.int64)
    lookup[[ds.class_names.index(c) for c in classes]] = np.arange(len(classes))

    def keep(x, y):
        new = lookup[y]
        return x[new >= 0], new[new >= 0]

    x_train, y_train = keep(ds.x_train, ds.y_train)
    x_test, y_test = keep(ds.x_test, ds.y_test)
    return Dataset(ds.name, x_train, y_train, x_test, y_test, list(classes), ds.source)


def load_splits(
    name: str, data_dir: str | None, val_split: float, seed: int, limit: int | None = None,
    classes=None,
) -> Splits:
    """`load` (only `classes`, if given), then `stratified_subset` to `limit` images (if
    given), then `split`."""
    ds = load(name, data_dir)
    if classes:
        ds = select_classes(ds, list(classes))
    x, y = ds.x_train, ds.y_train
    if limit and limit > len(x):
        raise DataError(f"--limit {limit} is more than the {len(x)} training images of {name}: "
                        f"use at most {len(x)} (or leave --limit out for all of them)")
    if limit:
        x, y = stratified_subset(x, y, limit, seed)
    return Splits(ds, *split(x, y, val_split, seed))
