"""train.py as a user runs it: data subsets (the synthetic data sets), real event files, real errors."""

import functools
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

import train
from monitor.data import load_splits
from monitor.settings import RunConfig
from runner import training
from runner.inputs import seeded_model
from tests import synthetic_data
from tests.helpers import read_tags
from tests.synthetic_data import SIZES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("dataset", "model", "classes"), [
    ("mnist", "simple", [str(i) for i in range(10)]),
    ("cifar10", "dropout", ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                            "ship", "truck"]),
])
def test_cli_run_end_to_end(tmp_path, synthetic_data_dir, dataset, model, classes):
    data_dir = str(synthetic_data_dir)
    out = run_cli("--model", model, "--dataset", dataset, "--limit", "300", "--epochs", "2",
                  "--batch-size", "64", "--logdir", str(tmp_path), "--run-name", "r", "--data-dir", data_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "r"
    assert f"Run directory: {run_dir}" in out.stdout and f"tensorboard --logdir {tmp_path}" in out.stdout
    tags = read_tags(str(run_dir))
    for sub in ("train", "validation"):
        assert tags[sub]["epoch_loss"] == [0, 1] and tags[sub]["epoch_accuracy"] == [0, 1]
    built = seeded_model(RunConfig(model=model, dataset=dataset).resolved(),
                         (28, 28, 1) if dataset == "mnist" else (32, 32, 3), 10)
    for weight in built.weights:  # a histogram for every kernel and bias, every epoch
        assert tags["train"][f"{weight.path}/histogram"] == [0, 1]
    assert tags["monitor"]["confusion_matrix/normalized/epochs_001-010"] == [0, 1]
    assert tags["monitor"]["predictions/grid/epochs_001-010"] == [0, 1]
    assert tags["monitor"][f"per_class/recall/{classes[3]}"] == [0, 1]
    assert tags["monitor"]["run/flags"] == [0]
    assert tags["test"]["confusion_matrix/normalized"] == [1] and tags["test"]["test/accuracy"] == [1]

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    assert metrics["train_size"] == 210 and metrics["validation_size"] == 90
    assert len(metrics["history"]["val_loss"]) == 2
    assert metrics["parameters"] == built.count_params()
    assert 0 < metrics["suite_seconds_on_training_thread"] < metrics["fit_time_s"]
    assert metrics["suite_seconds_in_background"] > 0  # rendering and writing, off the training thread
    for split in ("train", "validation", "test"):
        assert 0.0 <= metrics["final"][split]["accuracy"] <= 1.0
    prov = metrics["provenance"]
    assert prov["data_source"].startswith(data_dir.rstrip("/")) or os.path.samefile(
        os.path.dirname(prov["data_source"]), data_dir)
    assert len(prov["data_sha256"]) == 64 and prov["packages"]["keras"]
    cm = pd.read_csv(run_dir / "confusion_matrix_test.csv", index_col=0, dtype={0: str})
    assert [str(i) for i in cm.index] == classes and list(cm.columns) == classes
    test_size = SIZES[dataset][1]  # the real files hold 10,000: the real_data tests in test_data.py
    assert cm.to_numpy().sum() == test_size  # the whole, untouched test split
    assert np.trace(cm.to_numpy()) / test_size == pytest.approx(metrics["final"]["test"]["accuracy"],
                                                                abs=1e-4)
    with open(run_dir / "validation_confusion_matrices.jsonl") as f:
        assert [np.sum(json.loads(line)["counts"]) for line in f] == [90, 90]

    code = ("import sys, keras; m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
            "print(m.count_params())")
    reload = subprocess.run([sys.executable, "-c", code, str(run_dir / "model.keras")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert reload.returncode == 0, reload.stderr[-2000:]
    assert reload.stdout.split()[-1] == str(built.count_params())


def test_early_stopping_saves_and_reports_the_restored_epoch(tmp_path, monkeypatch, synthetic_data_dir):
    """val_loss never "improves" by 100, so epoch 1 stays best and patience 1 stops after epoch 2."""
    monkeypatch.setattr(keras.callbacks, "EarlyStopping",
                        functools.partial(keras.callbacks.EarlyStopping, min_delta=100.0))
    config = RunConfig(model="simple", dataset="mnist", epochs=6, batch_size=64, early_stopping=1,
                       limit=300, logdir=str(tmp_path), run_name="es")
    splits = load_splits("mnist", str(synthetic_data_dir), 0.3, 42, 300)
    printed = io.StringIO()
    record = training.run(config, splits, out=printed)
    assert "(2 epochs, " in printed.getvalue()
    assert "; weights of epoch 1, restored by early stopping)" in printed.getvalue()
    history = record["history"]
    assert record["epochs_run"] == 2 and record["early_stopped"] is True
    assert record["weights_epoch"] == 1
    assert record["final"]["validation"]["loss"] == history["val_loss"][0] != history["val_loss"][1]
    assert record["final"]["train"]["accuracy"] == history["accuracy"][0]
    assert json.loads((tmp_path / "es" / "metrics.json").read_text())["weights_epoch"] == 1
    tags = read_tags(str(tmp_path / "es"))
    assert tags["test"]["confusion_matrix/normalized"] == [1]


def test_same_seed_same_initial_weights():
    config = RunConfig(model="simple", dataset="mnist", seed=7).resolved()
    a = seeded_model(config, (28, 28, 1), 10).get_weights()
    b = seeded_model(config, (28, 28, 1), 10).get_weights()
    c = seeded_model(RunConfig(model="simple", seed=8).resolved(), (28, 28, 1), 10).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def _fake_data_dir(tmp_path, **arrays):
    base = dict(x_train=np.zeros((40, 28, 28), np.uint8), y_train=np.arange(40) % 10,
                x_test=np.zeros((10, 28, 28), np.uint8), y_test=np.arange(10))
    np.savez(tmp_path / "mnist.npz", **{**base, **arrays})
    return str(tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "resnet"], "invalid choice: 'resnet'"),
    (["--model", "dropout", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["--model", "dropout", "--epochs", "0"], "invalid --epochs 0"),
    (["--model", "dropout", "--batch-size", "-3"], "invalid --batch-size -3"),
    (["--model", "dropout", "--val-split", "1.5"], "invalid --val-split 1.5"),
    (["--model", "dropout", "--val-split", "0"], "invalid --val-split 0"),
    (["--model", "dropout", "--epochs", "two"], "invalid int value: 'two'"),
    (["--model", "dropout", "--run-name", "../escape"], "invalid --run-name"),
    (["--model", "dropout", "--classes", "cat", "wolf"], "invalid --classes cat wolf: give at least 2 "
     "different classes of cifar10 (airplane, automobile"),
    (["--model", "dropout", "--classes", "cat", "cat"], "invalid --classes cat cat"),
    (["--model", "dropout", "--classes", "cat"], "invalid --classes cat"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        sys.exit(train.main([*args, "--logdir", str(tmp_path / "logs")]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists() or not os.listdir(tmp_path / "logs")


def test_data_problems_exit_2_without_traceback_or_run_dir(tmp_path):
    logs = tmp_path / "logs"
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "cifar10.npz").write_bytes(b"PK\x03\x04 truncated")
    misshaped = tmp_path / "mis"
    misshaped.mkdir()
    _fake_data_dir(misshaped, x_train=np.zeros((40, 32, 32), np.uint8))
    cases = [
        (["--dataset", "mnist", "--data-dir", str(empty)], "expected mnist.npz"),
        (["--dataset", "mnist"], "MONITOR_DATA_DIR", {"MONITOR_DATA_DIR": str(empty)}),
        (["--dataset", "cifar10", "--data-dir", str(corrupt)], "cifar10.npz"),
        (["--dataset", "mnist", "--data-dir", str(misshaped)], "mnist.npz"),
        (["--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere")], "nowhere"),
    ]
    for args, message, *env in cases:
        out = run_cli("--model", "simple", *args, "--logdir", str(logs), env=env[0] if env else None)
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert out.stderr.startswith("train.py: error:") and message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr  # nothing else, TF not loaded
        assert not logs.exists() or not os.listdir(logs)


def test_existing_run_name_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _fake_data_dir(data)
    (tmp_path / "logs" / "taken").mkdir(parents=True)
    (tmp_path / "logs" / "taken" / "keep.txt").write_text("mine")
    out = run_cli("--model", "simple", "--dataset", "mnist", "--data-dir", str(data), "--logdir",
                  str(tmp_path / "logs"), "--run-name", "taken")
    assert out.returncode == 2 and "already exists" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "logs" / "taken" / "keep.txt").read_text() == "mine"


def test_help_explains_every_flag():
    out = run_cli("--help")
    assert out.returncode == 0
    for flag in ("--model", "--dataset", "--epochs", "--batch-size", "--learning-rate", "--val-split",
                 "--seed", "--data-dir", "--logdir", "--run-name", "--limit", "--early-stopping",
                 "--no-suite", "--every-n-epochs", "--grid-size", "--epochs-per-tag"):
        assert flag in out.stdout


def test_ctrl_c_keeps_every_finished_epoch(tmp_path, synthetic_data_dir):
    """SIGINT mid-run: exit 130, metrics.json says interrupted, every finished epoch has its images."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), "--model", "simple", "--dataset", "mnist",
         "--limit", "300", "--epochs", "200", "--logdir", str(tmp_path), "--run-name", "r",
         "--data-dir", str(synthetic_data_dir), "--picture-budget", "0"],  # every finished epoch's images
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    matrices = tmp_path / "r" / "validation_confusion_matrices.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if matrices.exists() and len(matrices.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 2
    tags = read_tags(str(tmp_path / "r"))["monitor"]
    steps = set(tags["confusion_matrix/normalized/epochs_001-010"])
    assert set(range(metrics["epochs_run"])) <= steps


def test_two_classes_train_a_one_unit_binary_model_end_to_end(tmp_path, synthetic_data_dir):
    """--classes cat dog: only those images, a Dense(1) sigmoid head, binary figures every epoch."""
    out = run_cli("--model", "simple", "--classes", "cat", "dog", "--epochs", "2", "--batch-size", "32",
                  "--logdir", str(tmp_path), "--run-name", "b", "--data-dir", str(synthetic_data_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "b"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["flags"]["classes"] == ["cat", "dog"]
    arrays = synthetic_data.arrays("cifar10")
    cats_and_dogs = {split: int(np.isin(arrays[f"y_{split}"], [3, 5]).sum()) for split in ("train", "test")}
    assert metrics["train_size"] + metrics["validation_size"] == cats_and_dogs["train"]
    assert set(metrics["test_per_class"]) == {"cat", "dog"}
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    assert model.outputs[0].shape[-1] == 1 and model.layers[-1].activation.__name__ == "sigmoid"
    tags = read_tags(str(run_dir))
    for tag in ("binary/roc_auc", "binary/pr_auc", "binary/best_f1_threshold", "binary/roc/epochs_001-010",
                "per_class/recall/cat", "confusion_matrix/normalized/epochs_001-010"):
        assert tags["monitor"][tag] == [0, 1], tag
    cm = pd.read_csv(run_dir / "confusion_matrix_test.csv", index_col=0)
    assert list(cm.index) == ["cat", "dog"] and cm.to_numpy().sum() == cats_and_dogs["test"]
