"""Tests for monitor.data, on tiny generated files."""

from __future__ import annotations

import io
import os
import pickle
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest

from monitor import data
from monitor.errors import DataError, MonitorError

N_PER_BATCH = 4


# --------------------------------------------------------------------------
# helpers


def _arrays(name: str, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shape = (28, 28) if name == "mnist" else (32, 32, 3)
    return {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def _write_npz(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def _batch(index: int) -> dict:
    """A tiny CIFAR batch: pixel (c, h, w) of image i is (i*7 + c*3 + h + w + index) % 256."""
    i, c, h, w = np.meshgrid(
        np.arange(N_PER_BATCH), np.arange(3), np.arange(32), np.arange(32), indexing="ij"
    )
    chw = ((i * 7 + c * 3 + h + w + index) % 256).astype(np.uint8)
    return {
        b"data": chw.reshape(N_PER_BATCH, 3072),
        b"labels": [(index + k) % 10 for k in range(N_PER_BATCH)],
        b"batch_label": b"tiny",
    }


BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _batches() -> dict[str, bytes]:
    return {name: pickle.dumps(_batch(k), protocol=2) for k, name in enumerate(BATCH_NAMES)}


def _write_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


class _Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.fixture
def no_download(monkeypatch):
    """Any call to the Keras loaders fails the test."""

    def fail():
        pytest.fail("keras download was attempted")

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(
            cifar10=types.SimpleNamespace(load_data=fail),
            mnist=types.SimpleNamespace(load_data=fail),
        )
    )
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.delenv("MONITOR_DATA_DIR", raising=False)


# --------------------------------------------------------------------------
# npz


def test_errors_hierarchy():
    assert issubclass(DataError, MonitorError)


def test_mnist_npz_round_trip(tmp_path, no_download):
    arrays = _arrays("mnist")
    _write_npz(tmp_path / "mnist.npz", arrays)
    ds = data.load("mnist", str(tmp_path))
    assert ds.name == "mnist"
    assert ds.x_train.shape == (20, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10, 28, 28, 1)
    assert ds.y_train.shape == (20,) and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.source == str((tmp_path / "mnist.npz").resolve())


def test_cifar_npz_round_trip_flattens_labels(tmp_path, no_download):
    arrays = _arrays("cifar10")
    arrays["y_train"] = arrays["y_train"].reshape(-1, 1)
    arrays["y_test"] = arrays["y_test"].reshape(-1, 1)
    _write_npz(tmp_path / "cifar10.npz", arrays)
    ds = data.load("cifar10", str(tmp_path))
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.y_train.shape == (20,) and ds.y_test.shape == (10,)
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"][:, 0])
    assert ds.class_names[0] == "airplane" and len(ds.class_names) == 10


def test_keras_style_mnist_npz(tmp_path, no_download):
    """Keras' cached mnist.npz: same keys, uint8 x (N,28,28), uint8 y (N,)."""
    rng = np.random.default_rng(1)
    with open(tmp_path / "mnist.npz", "wb") as f:
        np.savez_compressed(
            f,
            x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
            x_train=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
            y_train=rng.integers(0, 10, 12).astype(np.uint8),
            y_test=rng.integers(0, 10, 5).astype(np.uint8),
        )
    ds = data.load("mnist", str(tmp_path))
    assert ds.x_train.shape == (12, 28, 28, 1)
    assert ds.x_test.shape == (5, 28, 28, 1)


def test_integer_pixels_in_range_accepted(tmp_path, no_download):
    arrays = _arrays("mnist")
    arrays["x_train"] = arrays["x_train"].astype(np.int64)
    _write_npz(tmp_path / "mnist.npz", arrays)
    assert data.load("mnist", str(tmp_path)).x_train.dtype == np.uint8


# --------------------------------------------------------------------------
# official CIFAR tarball / folder


def _check_cifar_batches(ds) -> None:
    assert ds.x_train.shape == (5 * N_PER_BATCH, 32, 32, 3)
    assert ds.x_test.shape == (N_PER_BATCH, 32, 32, 3)
    assert ds.y_train.shape == (5 * N_PER_BATCH,) and ds.y_train.dtype == np.int64
    # image 1 of data_batch_2 (index 1), pixel h=5, w=9, channel c=2
    expected = (1 * 7 + 2 * 3 + 5 + 9 + 1) % 256
    assert ds.x_train[N_PER_BATCH + 1, 5, 9, 2] == expected
    # test_batch is index 5; image 3, pixel h=31, w=0, channel 0
    assert ds.x_test[3, 31, 0, 0] == (3 * 7 + 31 + 5) % 256
    np.testing.assert_array_equal(ds.y_train[:N_PER_BATCH], [0, 1, 2, 3])
    np.testing.assert_array_equal(ds.y_test, [5, 6, 7, 8])


def test_cifar_tarball(tmp_path, no_download):
    path = _write_tarball(tmp_path / "cifar-10-python.tar.gz", _batches())
    ds = data.load("cifar10", str(tmp_path))
    _check_cifar_batches(ds)
    assert ds.source == str(path.resolve())
    assert not (tmp_path / "cifar-10-batches-py").exists()  # nothing extracted


def test_cifar_extracted_dir(tmp_path, no_download):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in _batches().items():
        (folder / name).write_bytes(payload)
    ds = data.load("cifar10", str(tmp_path))
    _check_cifar_batches(ds)
    assert ds.source == str(folder.resolve())


def test_npz_preferred_over_tarball(tmp_path, no_download):
    _write_tarball(tmp_path / "cifar-10-python.tar.gz", _batches())
    _write_npz(tmp_path / "cifar10.npz", _arrays("cifar10"))
    assert data.load("cifar10", str(tmp_path)).source.endswith("cifar10.npz")


def test_tarball_missing_member(tmp_path, no_download):
    members = _batches()
    del members["test_batch"]
    _write_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match="test_batch"):
        data.load("cifar10", str(tmp_path))


def test_tarball_symlink_member_refused(tmp_path, no_download):
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in _batches().items():
            if name == "data_batch_3":
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.type = tarfile.SYMTYPE
                info.linkname = "/etc/passwd"
                tar.addfile(info)
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DataError, match="not a regular file"):
        data.load("cifar10", str(tmp_path))


def test_tarball_junk(tmp_path, no_download):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tarball at all")
    with pytest.raises(DataError, match="cannot read"):
        data.load("cifar10", str(tmp_path))


def test_malicious_pickle_refused(tmp_path, no_download):
    sentinel = tmp_path / "SENTINEL"
    members = _batches()
    evil = {b"data": _Evil(f"touch {sentinel}"), b"labels": [0]}
    members["data_batch_1"] = pickle.dumps(evil, protocol=2)
    _write_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match="refusing to unpickle .*system"):
        data.load("cifar10", str(tmp_path))
    assert not sentinel.exists()


def test_malicious_pickle_in_dir_refused(tmp_path, no_download):
    sentinel = tmp_path / "SENTINEL"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in _batches().items():
        (folder / name).write_bytes(payload)
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": _Evil(f"touch {sentinel}")}, protocol=2)
    )
    with pytest.raises(DataError, match="not a CIFAR-10 batch"):
        data.load("cifar10", str(tmp_path))
    assert not sentinel.exists()


def test_object_array_pickle_refused(tmp_path, no_download):
    members = _batches()
    obj = np.array([1, "a"], dtype=object)
    members["data_batch_2"] = pickle.dumps({b"data": obj, b"labels": [0, 1]}, protocol=2)
    _write_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError):
        data.load("cifar10", str(tmp_path))


# --------------------------------------------------------------------------
# where the files come from


def test_resolve_data_dir(monkeypatch):
    monkeypatch.setenv("MONITOR_DATA_DIR", "/env/dir")
    assert data.resolve_data_dir("/arg/dir") == "/arg/dir"
    assert data.resolve_data_dir(None) == "/env/dir"
    monkeypatch.setenv("MONITOR_DATA_DIR", "")
    assert data.resolve_data_dir(None) is None
    monkeypatch.delenv("MONITOR_DATA_DIR")
    assert data.resolve_data_dir(None) is None


def test_arg_beats_env(tmp_path, monkeypatch, no_download):
    arg_dir, env_dir = tmp_path / "arg", tmp_path / "env"
    arg_dir.mkdir()
    env_dir.mkdir()
    _write_npz(arg_dir / "mnist.npz", _arrays("mnist", n_train=20))
    _write_npz(env_dir / "mnist.npz", _arrays("mnist", n_train=30))
    monkeypatch.setenv("MONITOR_DATA_DIR", str(env_dir))
    assert len(data.load("mnist", str(arg_dir)).x_train) == 20
    assert len(data.load("mnist").x_train) == 30


def test_given_dir_without_files_does_not_download(tmp_path, monkeypatch, no_download):
    with pytest.raises(DataError, match="mnist.npz"):
        data.load("mnist", str(tmp_path))
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        data.load("cifar10")


def test_missing_dir_does_not_download(tmp_path, monkeypatch, no_download):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist"):
        data.load("cifar10", str(missing))
    monkeypatch.setenv("MONITOR_DATA_DIR", str(missing))
    with pytest.raises(DataError, match=str(missing)):
        data.load("mnist")


def test_keras_fallback_used_without_dir(monkeypatch):
    monkeypatch.delenv("MONITOR_DATA_DIR", raising=False)
    a = _arrays("cifar10")
    result = ((a["x_train"], a["y_train"].reshape(-1, 1)), (a["x_test"], a["y_test"]))
    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(
            cifar10=types.SimpleNamespace(load_data=lambda: result),
            mnist=types.SimpleNamespace(load_data=lambda: pytest.fail("wrong loader")),
        )
    )
    monkeypatch.setitem(sys.modules, "keras", fake)
    ds = data.load("cifar10")
    assert ds.source == "keras.datasets download"
    assert ds.y_train.shape == (20,)


def test_keras_fallback_failure_is_data_error(monkeypatch):
    monkeypatch.delenv("MONITOR_DATA_DIR", raising=False)

    def boom():
        raise OSError("network unreachable")

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=boom))
    )
    monkeypatch.setitem(sys.modules, "keras", fake)
    with pytest.raises(DataError, match="MONITOR_DATA_DIR") as info:
        data.load("mnist")
    assert "\n" not in str(info.value)
    assert "network unreachable" in str(info.value)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        data.load("imagenet")


# --------------------------------------------------------------------------
# bad npz files


def test_truncated_npz(tmp_path, no_download):
    path = _write_npz(tmp_path / "mnist.npz", _arrays("mnist"))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="mnist.npz"):
        data.load("mnist", str(tmp_path))


def test_junk_npz(tmp_path, no_download):
    (tmp_path / "mnist.npz").write_bytes(b"hello, this is not a zip file" * 10)
    with pytest.raises(DataError, match="mnist.npz"):
        data.load("mnist", str(tmp_path))


def test_npz_missing_key(tmp_path, no_download):
    arrays = _arrays("mnist")
    del arrays["y_test"]
    _write_npz(tmp_path / "mnist.npz", arrays)
    with pytest.raises(DataError, match="y_test"):
        data.load("mnist", str(tmp_path))


def test_npz_object_array(tmp_path, no_download):
    arrays = _arrays("mnist")
    arrays["y_test"] = np.array([1, "x"], dtype=object)
    np.savez(tmp_path / "mnist.npz", allow_pickle=True, **arrays)
    with pytest.raises(DataError, match="mnist.npz"):
        data.load("mnist", str(tmp_path))


@pytest.mark.parametrize("shape", [(4, 32, 32, 4), (4, 31, 31, 3), (4, 28, 28, 3), (4, 32)])
def test_misshaped_x(tmp_path, no_download, shape):
    arrays = _arrays("cifar10", n_train=4)
    arrays["x_train"] = np.zeros(shape, dtype=np.uint8)
    _write_npz(tmp_path / "cifar10.npz", arrays)
    with pytest.raises(DataError, match="mis-shaped"):
        data.load("cifar10", str(tmp_path))


def test_float_pixels_refused(tmp_path, no_download):
    arrays = _arrays("mnist")
    arrays["x_test"] = arrays["x_test"].astype(np.float32) / 255
    _write_npz(tmp_path / "mnist.npz", arrays)
    with pytest.raises(DataError, match="dtype"):
        data.load("mnist", str(tmp_path))


def test_label_out_of_range(tmp_path, no_download):
    arrays = _arrays("mnist")
    arrays["y_train"][3] = 10
    _write_npz(tmp_path / "mnist.npz", arrays)
    with pytest.raises(DataError, match="labels outside"):
        data.load("mnist", str(tmp_path))


def test_length_mismatch(tmp_path, no_download):
    arrays = _arrays("mnist")
    arrays["y_train"] = arrays["y_train"][:-1]
    _write_npz(tmp_path / "mnist.npz", arrays)
    with pytest.raises(DataError, match="19 labels but there are 20 images"):
        data.load("mnist", str(tmp_path))


# --------------------------------------------------------------------------
# split / stratified_subset


def _labelled(n: int = 1000, classes: int = 10):
    x = np.arange(n).reshape(n, 1)
    y = np.arange(n) % classes
    return x, y


def test_split_sizes_and_stratification():
    x, y = _labelled()
    x_tr, y_tr, x_val, y_val = data.split(x, y, 0.3, seed=0)
    assert (len(x_tr), len(y_tr), len(x_val), len(y_val)) == (700, 700, 300, 300)
    assert np.all(np.abs(np.bincount(y_val) - 30) <= 1)
    assert np.all(np.abs(np.bincount(y_tr) - 70) <= 1)
    # disjoint and complete, labels still attached to their images
    assert sorted(np.concatenate([x_tr, x_val]).ravel().tolist()) == list(range(1000))
    np.testing.assert_array_equal(x_val.ravel() % 10, y_val)


def test_split_deterministic():
    x, y = _labelled()
    a = data.split(x, y, 0.3, seed=1)
    b = data.split(x, y, 0.3, seed=1)
    c = data.split(x, y, 0.3, seed=2)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize("val_split", [0, 1, -0.1, 1.5])
def test_split_bad_fraction(val_split):
    x, y = _labelled(100)
    with pytest.raises(DataError, match="between 0 and 1"):
        data.split(x, y, val_split, seed=0)


def test_split_too_few_samples():
    x, y = _labelled(12)
    with pytest.raises(DataError, match="cannot split"):
        data.split(x, y, 0.1, seed=0)


def test_stratified_subset():
    x, y = _labelled()
    xs, ys = data.stratified_subset(x, y, 200, seed=0)
    assert len(xs) == len(ys) == 200
    assert np.all(np.bincount(ys) == 20)
    np.testing.assert_array_equal(xs.ravel() % 10, ys)
    xs2, _ = data.stratified_subset(x, y, 200, seed=0)
    xs3, _ = data.stratified_subset(x, y, 200, seed=3)
    np.testing.assert_array_equal(xs, xs2)
    assert not np.array_equal(xs, xs3)


def test_stratified_subset_whole_set_unchanged():
    x, y = _labelled(50)
    xs, ys = data.stratified_subset(x, y, 50, seed=0)
    assert xs is x and ys is y
    xs, ys = data.stratified_subset(x, y, 500, seed=0)
    assert xs is x and ys is y


@pytest.mark.parametrize("n", [0, -5, 9])
def test_stratified_subset_impossible(n):
    x, y = _labelled(100)
    with pytest.raises(DataError, match="subset"):
        data.stratified_subset(x, y, n, seed=0)


# --------------------------------------------------------------------------
# file_sha256


def test_file_sha256(tmp_path):
    import hashlib

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"second")
    (tmp_path / "d" / "a").write_bytes(b"first")
    assert data.file_sha256(str(tmp_path / "d" / "a")) == hashlib.sha256(b"first").hexdigest()
    assert data.file_sha256(str(tmp_path / "d")) == hashlib.sha256(b"firstsecond").hexdigest()
    assert data.file_sha256(str(tmp_path / "missing")) is None


# --------------------------------------------------------------------------
# the synthetic data sets the end-to-end tests train on (tests/synthetic_data.py)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_the_synthetic_data_sets_load_split_and_are_learnable(synthetic_data_dir, name):
    from tests import synthetic_data

    ds = data.load(name, str(synthetic_data_dir))
    n_train, n_test = synthetic_data.SIZES[name]
    assert ds.x_train.shape == (n_train, *data.IMAGE_SHAPES[name])
    assert ds.x_test.shape == (n_test, *data.IMAGE_SHAPES[name])
    assert ds.source == str(synthetic_data_dir / f"{name}.npz")
    assert ds.class_names == data.CLASS_NAMES[name]
    for y in (ds.y_train, ds.y_test):  # every class, about equally often
        assert np.bincount(y, minlength=10).min() >= len(y) // 10 - len(y) // 10 // 2
    splits = data.load_splits(name, str(synthetic_data_dir), 0.3, 42, 300)
    assert set(splits.y_val.tolist()) == set(range(10))
    # a learnable signal: the nearest class mean of the training images gets most test images right,
    # but the wrong labels keep anything from being perfect
    flat = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float64)
    means = np.stack([flat[ds.y_train == k].mean(axis=0) for k in range(10)])
    test = ds.x_test.reshape(len(ds.x_test), -1).astype(np.float64)
    predicted = ((test[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert 0.8 <= np.mean(predicted == ds.y_test) < 1.0
    with np.load(synthetic_data_dir / f"{name}.npz") as raw:  # the same files, byte for byte, every time
        for key, value in synthetic_data.arrays(name).items():
            np.testing.assert_array_equal(raw[key], value)
            assert raw[key].dtype == np.uint8


# --------------------------------------------------------------------------
# real data (cheap: the files are read, nothing is trained)


@pytest.mark.real_data
def test_real_mnist_via_env():
    ds = data.load("mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1)
    assert ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.y_train.shape == (60000,)
    assert len(np.unique(ds.y_train)) == 10
    assert len(ds.class_names) == 10


@pytest.mark.real_data
def test_real_data_sizes_and_the_limit_message(real_data_dir):
    """The real files' sizes, which the synthetic end-to-end tests cannot assert: the whole CIFAR-10
    test split (10,000 images, what test_cli's confusion matrix sums to on real data) and the
    message of a --limit beyond the 60,000 real MNIST training images (test_resume's "limit" case)."""
    ds = data.load("cifar10", real_data_dir)
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
    assert ds.y_test.shape == (10000,) and len(np.unique(ds.y_test)) == 10
    with pytest.raises(DataError) as info:
        data.load_splits("mnist", real_data_dir, 0.3, 42, 99999999)
    assert "--limit 99999999 is more than the 60000 training images of mnist" in str(info.value)
