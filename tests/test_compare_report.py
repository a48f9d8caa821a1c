"""Comparing runs, HParams, report.html: `train.py --model simple twoblock` end to end.

Two tiny MNIST runs (the synthetic stand-in, tests/synthetic_data.py) in one call; read back
the HParams summaries (event files and the real TensorBoard's hparams API), the comparison, and
each run's report.html, which a real headless browser opens from disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tensorboard.plugins.hparams import metadata as hp_metadata
from tensorboard.util import tensor_util

from monitor.compare import TABLE_FILE
from monitor.hparams import METRICS, dropout_rates
from monitor.models import build
from monitor.render import png_size
from tests.browser import chromium
from tests.helpers import accumulator
from tests.tb_server import tensorboard

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("simple", "twoblock")
SECTIONS = {"summary", "flags", "curves", "confusion", "calibration", "per-class", "confused-pairs",
            "predictions",
            "provenance"}


def _cli(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CI": "1"})


@pytest.fixture(scope="module")
def parent(tmp_path_factory, synthetic_data_dir) -> Path:
    logdir = tmp_path_factory.mktemp("compare")
    done = _cli("train.py", "--model", *MODELS, "--dataset", "mnist", "--limit", "400", "--epochs", "2",
                "--logdir", str(logdir), "--run-name", "pair",
                "--data-dir", str(synthetic_data_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| simple |" in done.stdout and "| twoblock |" in done.stdout
    return logdir / "pair"


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_each_run_logs_its_hyperparameters_and_final_metrics(parent):
    for model in MODELS:
        run_dir = parent / model
        record = _record(run_dir)
        acc = accumulator(str(run_dir))
        tags = set(acc.Tags()["tensors"])
        assert {hp_metadata.EXPERIMENT_TAG, hp_metadata.SESSION_START_INFO_TAG} | set(METRICS) <= tags
        start = hp_metadata.parse_session_start_info_plugin_data(
            acc.SummaryMetadata(hp_metadata.SESSION_START_INFO_TAG).plugin_data.content)
        values = {k: (v.string_value or v.number_value) for k, v in start.hparams.items()}
        flags = record["flags"]
        assert values["model"] == model and values["dataset"] == "mnist"
        assert values["learning_rate"] == pytest.approx(flags["learning_rate"])
        assert values["batch_size"] == flags["batch_size"] and values["epochs"] == 2
        assert values["val_split"] == pytest.approx(0.3) and values["seed"] == 42
        assert values["strategy"] == "default" and values["optimizer"] == "adam"
        built = build(model, (28, 28, 1), 10)
        rates = [f"{layer.rate:g}" for layer in built.layers if type(layer).__name__ == "Dropout"]
        assert values["dropout_rates"] == (", ".join(rates) or "none")
        assert start.group_name == model
        final = {tag: float(tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto)) for tag in METRICS}
        assert final["final/test_accuracy"] == pytest.approx(record["final"]["test"]["accuracy"], abs=1e-6)
        assert final["final/val_loss"] == pytest.approx(record["final"]["validation"]["loss"], abs=1e-5)
        assert final["final/epochs_run"] == 2


def test_dropout_rates_are_read_from_the_model():
    model = build("dropout", (32, 32, 3), 10)
    rates = [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"]
    assert rates and dropout_rates(model.get_config()) == ", ".join(f"{r:g}" for r in rates)


def test_the_hparams_dashboard_lists_both_runs_with_metrics(parent, tmp_path):
    import urllib.request

    def post(base, route, body):
        request = urllib.request.Request(f"{base}/data/plugin/hparams/{route}",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())

    query = {"experimentName": "", "colParams": [], "startIndex": 0, "sliceSize": 10,
             "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}

    def ready(base):
        return len(post(base, "session_groups", query).get("sessionGroups", [])) == 2

    with tensorboard(parent, tmp_path / "tb.log", ready) as base:
        experiment = post(base, "experiment", {"experimentName": ""})
        names = {h["name"] for h in experiment["hparamInfos"]}
        assert {"model", "dataset", "dropout_rates", "optimizer", "learning_rate", "batch_size", "epochs",
                "val_split", "seed", "strategy"} <= names
        metric_tags = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert set(METRICS) <= metric_tags
        groups = post(base, "session_groups", query)["sessionGroups"]
        by_model = {g["hparams"]["model"]: g for g in groups}
        assert set(by_model) == set(MODELS)
        for model, group in by_model.items():
            values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            expected = _record(parent / model)["final"]["test"]["accuracy"]
            assert values["final/test_accuracy"] == pytest.approx(expected, abs=1e-6)


def test_the_comparison_png_table_and_summaries(parent, tmp_path):
    width, height = png_size((parent / "comparison.png").read_bytes())
    assert 600 <= width <= 2000 and 300 <= height <= 1200
    table = (parent / TABLE_FILE).read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split("|")[2].strip() for row in rows] == list(MODELS)
    for model, row in zip(MODELS, rows, strict=True):
        assert f"{_record(parent / model)['final']['test']['accuracy']:.4f}" in row
    acc = accumulator(str(parent / "comparison"))
    assert {"comparison/curves", "comparison/table"} <= set(acc.Tags()["tensors"])
    # the same for existing runs, elsewhere
    out = tmp_path / "again"
    done = _cli("-m", "monitor.compare", str(parent / "simple"), str(parent / "twoblock"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / TABLE_FILE).read_text() == table
    assert png_size((out / "comparison.png").read_bytes()) == (width, height)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs, self.tags = set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        self.refs += [attrs[k] for k in ("src", "href") if k in attrs]


def test_report_html_is_complete_self_contained_and_loads_in_a_browser(parent):
    run_dir = parent / "twoblock"
    for name in ("curves.png", "confusion_validation.png", "confusion_test.png", "prediction_grid.png"):
        width, height = png_size((run_dir / name).read_bytes())
        assert width >= 300 and height >= 200
    page = _Page()
    page.feed((run_dir / "report.html").read_text())
    assert SECTIONS <= page.ids
    assert "script" not in page.tags and "link" not in page.tags
    assert page.refs and all(ref.startswith("data:image/png;base64,") for ref in page.refs)
    with chromium() as driver:
        driver.get((run_dir / "report.html").as_uri())
        sizes = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        # curves, two matrices, two reliability diagrams (validation, test), two Grad-CAM pictures
        # (mistakes, grid), the grid
        assert len(sizes) == 8 and all(done and width > 0 for done, width in sizes)
        assert "twoblock" in driver.title


def test_an_interrupted_run_gets_a_report_marked_as_such(parent, tmp_path):
    run_dir = tmp_path / "cut"
    shutil.copytree(parent / "simple", run_dir)
    record = _record(run_dir)
    record.update(status="interrupted", epochs_run=1, resume_command=f"python train.py --resume {run_dir}")
    record.pop("final")
    (run_dir / "metrics.json").write_text(json.dumps(record))
    (run_dir / "confusion_matrix_test.csv").unlink()
    done = _cli("-m", "monitor.report", str(run_dir))
    assert done.returncode == 0, done.stderr
    html = (run_dir / "report.html").read_text()
    assert "did not complete" in html and "interrupted" in html and "Test (row-normalised)" not in html
    bad = _cli("-m", "monitor.report", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
