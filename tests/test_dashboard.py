"""The dashboard plugin served by the real `tensorboard`, with both of its loaders.

Logs: a 12-epoch `train.py` run on the synthetic MNIST (tests/synthetic_data.py; validation every
epoch and the test split) and a
synthetic 150-epoch log written with the dashboard's own summary writers. Each server
(`--load_fast=true`: the Rust data server; `--load_fast=false`: the Python loader)
must list the plugin as active and serve every epoch, with counts equal to the run's
`validation_confusion_matrices.jsonl` and the synthetic matrices. No sample-limit flag.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from monitor.dashboard import metadata
from monitor.dashboard.plugin import cells_array
from monitor.runfiles.matrices import FILE as MATRICES_FILE
from monitor.runfiles.matrices import decode as matrix_from_record
from monitor.runfiles.matrices import dense_matrix
from monitor.runfiles.test_confusion import FILE as TEST_CONFUSION_FILE
from tests.synthetic_logs import write_run
from tests.tb_server import get, get_json, tensorboard

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 12
SYNTHETIC_EPOCHS = 150
PLUGIN = f"/data/plugin/{metadata.PLUGIN_NAME}"


@pytest.fixture(scope="module")
def logdir(tmp_path_factory, synthetic_data_dir) -> Path:
    root = tmp_path_factory.mktemp("dashboard_logs")
    done = subprocess.run(
        [sys.executable, "train.py", "--model", "simple", "--dataset", "mnist", "--limit", "800",
         "--epochs", str(EPOCHS), "--logdir", str(root), "--run-name", "mnist-simple",
         "--data-dir", str(synthetic_data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    matrices = write_run(root / "synthetic" / "monitor", classes=12, epochs=SYNTHETIC_EPOCHS)
    np.save(root / "synthetic_matrices.npy", np.stack(matrices))
    return root


def _ready(base: str) -> bool:
    runs = {(r["run"], r["split"]): r["epochs"] for r in get_json(base, f"{PLUGIN}/runs")["runs"]}
    return (runs.get(("mnist-simple/monitor", "validation")) == EPOCHS
            and runs.get(("mnist-simple/test", "test")) is not None
            and runs.get(("synthetic/monitor", "validation")) == SYNTHETIC_EPOCHS)


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust-loader", "python-loader"])
def server(request, logdir, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("tb") / "tensorboard.log"
    with tensorboard(logdir, log_path, _ready, f"--load_fast={request.param}") as base:
        yield base


def _matrices(base: str, run: str, split: str = "validation") -> dict:
    return get_json(base, f"{PLUGIN}/matrices", run=run, split=split)


def test_the_plugin_is_listed_active_with_its_tab(server):
    listing = get_json(server, "/data/plugins_listing")[metadata.PLUGIN_NAME]
    assert listing["enabled"] is True
    assert listing["tab_name"] == metadata.TAB_NAME
    assert listing["loading_mechanism"] == {"type": "IFRAME",
                                            "module_path": f"{PLUGIN}/static/index.js"}


def test_every_epoch_of_a_training_run_equals_the_jsonl(server, logdir):
    lines = (logdir / "mnist-simple" / MATRICES_FILE).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    served = _matrices(server, "mnist-simple/monitor")
    assert served["class_names"] == records[0]["class_names"]
    assert [e["step"] for e in served["epochs"]] == [r["epoch"] for r in records] == list(range(EPOCHS))
    for epoch, record in zip(served["epochs"], records, strict=True):
        np.testing.assert_array_equal(dense_matrix(cells_array(epoch["cells"]), 10),
                                      matrix_from_record(record))


def test_the_test_split_equals_the_test_csv(server, logdir):
    served = _matrices(server, "mnist-simple/test", split="test")
    assert len(served["epochs"]) == 1
    expected = pd.read_csv(logdir / "mnist-simple" / TEST_CONFUSION_FILE, index_col=0).to_numpy()
    np.testing.assert_array_equal(dense_matrix(cells_array(served["epochs"][0]["cells"]), 10),
                                  expected)


def test_all_150_synthetic_epochs_are_served(server, logdir):
    expected = np.load(logdir / "synthetic_matrices.npy")
    served = _matrices(server, "synthetic/monitor")
    assert [e["step"] for e in served["epochs"]] == list(range(SYNTHETIC_EPOCHS))
    got = np.stack([dense_matrix(cells_array(e["cells"]), 12) for e in served["epochs"]])
    np.testing.assert_array_equal(got, expected)
    mistakes = get_json(server, f"{PLUGIN}/mistakes", run="synthetic/monitor", split="validation", step=149)
    assert [m["index"] for m in mistakes["mistakes"]] == [0, 1, 2, 3]


def test_mistakes_of_every_epoch_are_wrong_sorted_and_have_images(server):
    served = _matrices(server, "mnist-simple/monitor")
    for epoch in served["epochs"]:
        cm = dense_matrix(cells_array(epoch["cells"]), 10)
        mistakes = get_json(server, f"{PLUGIN}/mistakes", run="mnist-simple/monitor", split="validation",
                            step=epoch["step"])["mistakes"]
        wrong = int(cm.sum() - np.trace(cm))
        assert len(mistakes) == min(64, wrong)
        confidences = [m["confidence"] for m in mistakes]
        assert confidences == sorted(confidences, reverse=True)
        for m in mistakes:
            assert m["true"] != m["predicted"] and cm[m["true"], m["predicted"]] > 0
        first = get(server, f"{PLUGIN}/mistake_image", run="mnist-simple/monitor", split="validation",
                    step=epoch["step"], index=0)
        assert Image.open(io.BytesIO(first)).size == (28, 28)


def test_assets_and_bad_requests(server):
    assert b"export async function render" in get(server, f"{PLUGIN}/static/index.js")
    for path, params, code in [
        (f"{PLUGIN}/static/../plugin.py", {}, 404),
        (f"{PLUGIN}/matrices", {"run": "no-such-run", "split": "validation"}, 404),
        (f"{PLUGIN}/matrices", {}, 400),
        (f"{PLUGIN}/mistakes", {"run": "mnist-simple/monitor", "split": "validation", "step": "x"}, 400),
        (f"{PLUGIN}/mistake_image", {"run": "mnist-simple/monitor", "split": "validation", "step": 0,
                                     "index": 10_000}, 404),
    ]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            get(server, path, **params)
        assert caught.value.code == code, path
