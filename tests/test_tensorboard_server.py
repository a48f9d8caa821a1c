"""End to end: train with the suite, start a real TensorBoard server, read it over HTTP.

Two runs in one log directory, 12 epochs each (more than TensorBoard's default
10 images/texts per tag): `blocks` with the default `epochs_per_tag=10` and
`single` with `epochs_per_tag=0`. The plain command users type must serve every
epoch of `blocks`; `python -m monitor.board`'s command must serve every epoch of
`single`. Servers bind 127.0.0.1 only and are always terminated.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from callbacks.suite import close_suite, monitoring_callbacks
from monitor.board import tensorboard_command
from tests.helpers import NAMES, tiny_data, tiny_model
from tests.tb_server import free_port, get, get_json, serve

CLASSES = NAMES
EPOCHS = 12
ALL_STEPS = set(range(EPOCHS))
BLOCKS = ("epochs_001-010", "epochs_011-020")
IMAGE_KINDS = ("confusion_matrix/normalized", "confusion_matrix/counts", "mistakes/most_confident",
               "predictions/grid", "predictions/probabilities", "calibration/reliability",
               "explanations/mistakes", "explanations/grid")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]
READY_SECONDS = 60


def _train(run_dir: Path, n: int, seed: int, **suite_kwargs) -> None:
    x, y = tiny_data(n, classes=len(CLASSES), seed=seed)
    model = tiny_model(classes=len(CLASSES), seed=seed)
    suite = monitoring_callbacks(CLASSES, str(run_dir), picture_budget=0,  # every epoch's images
                                 **suite_kwargs)
    try:
        model.fit(x, y, validation_split=0.3, epochs=EPOCHS, batch_size=64, callbacks=suite, verbose=0)
    finally:
        close_suite(suite)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """`blocks/` (300 images, defaults) and `single/` (100 images, epochs_per_tag=0)."""
    root = tmp_path_factory.mktemp("tb_logs")
    _train(root / "blocks", 300, seed=0)
    _train(root / "single", 100, seed=1, epochs_per_tag=0, tensorboard=False, mistakes=0,
           prediction_grid=False, pr_curves=False)
    return root


_free_port, _get, _json = free_port, get, get_json


def _last_epoch_loaded(base: str, runs: list[str]) -> bool:
    """Every run's last scalar epoch is loaded: its event file is read past every
    image and text of that epoch (the writer thread writes those first)."""
    if not set(runs) <= set(_json(base, "/data/runs")):
        return False
    for run in runs:
        points = _json(base, "/data/plugin/scalars/scalars", run=run, tag="averages/f1_macro")
        if not points or points[-1][1] != EPOCHS - 1:
            return False
    return True


def tensorboard_server(command: list[str], port: int, runs: list[str], log_path: Path):
    """Runs `command` (a TensorBoard on 127.0.0.1:`port`) until `runs` are loaded; yields its URL.

    Waits at most READY_SECONDS for `/data/runs` to answer and every run's data to
    load; the process is terminated (killed if need be) however the block ends.
    """
    return serve(command, f"http://127.0.0.1:{port}", log_path, lambda base: _last_epoch_loaded(base, runs),
                 ready_seconds=READY_SECONDS, cwd=REPO)


@pytest.fixture(scope="module")
def plain_server(logdir, tmp_path_factory):
    """TensorBoard started the plain way: no samples_per_plugin (default loader)."""
    port = _free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path_factory.mktemp("tb_plain") / "tensorboard.log"
    with tensorboard_server(command, port, ["blocks/monitor", "single/monitor"], log_path) as base:
        yield base


@pytest.fixture(scope="module")
def board_server(logdir, tmp_path_factory):
    """TensorBoard started with `python -m monitor.board`'s command."""
    port = _free_port()
    command = tensorboard_command(str(logdir), port=port, host="127.0.0.1")
    log_path = tmp_path_factory.mktemp("tb_board") / "tensorboard.log"
    with tensorboard_server(command, port, ["single/monitor"], log_path) as base:
        yield base


def _image_entries(base: str, run: str, tag: str) -> list[dict]:
    return _json(base, "/data/plugin/images/images", run=run, tag=tag, sample=0)


def _text_steps(base: str, run: str, tag: str) -> set[int]:
    return {entry["step"] for entry in _json(base, "/data/plugin/text/text", run=run, tag=tag)}


def test_image_tags_are_split_into_blocks_of_ten_epochs(plain_server):
    tags = _json(plain_server, "/data/plugin/images/tags")
    expected = {f"{kind}/{block}" for kind in IMAGE_KINDS for block in BLOCKS}
    assert set(tags["blocks/monitor"]) == expected
    assert set(tags["single/monitor"]) == {"confusion_matrix/normalized", "confusion_matrix/counts",
                                          "calibration/reliability"}


def test_scalar_tags_list_per_class_metrics_and_averages(plain_server):
    tags = _json(plain_server, "/data/plugin/scalars/tags")["blocks/monitor"]
    for metric in ("precision", "recall", "f1"):
        for name in CLASSES:
            assert f"per_class/{metric}/{name}" in tags
    assert "averages/f1_macro" in tags
    points = _json(plain_server, "/data/plugin/scalars/scalars", run="blocks/monitor",
                   tag="per_class/precision/cat")
    assert [step for _, step, _ in points] == list(range(EPOCHS))


def test_plain_tensorboard_serves_every_epoch_of_blocked_tags(plain_server):
    run = "blocks/monitor"
    for kind in IMAGE_KINDS:
        per_block = [{e["step"] for e in _image_entries(plain_server, run, f"{kind}/{block}")}
                     for block in BLOCKS]
        assert per_block == [set(range(10)), {10, 11}], kind
    for kind in ("text/per_class", "text/confused_pairs"):
        steps = set().union(*(_text_steps(plain_server, run, f"{kind}/{block}") for block in BLOCKS))
        assert steps == ALL_STEPS, kind


def test_served_image_is_a_png(plain_server):
    entries = _image_entries(plain_server, "blocks/monitor", f"confusion_matrix/normalized/{BLOCKS[1]}")
    with urllib.request.urlopen(
        f"{plain_server}/data/plugin/images/individualImage?{entries[-1]['query']}", timeout=10
    ) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read().startswith(PNG_SIGNATURE)


def test_plain_tensorboard_drops_epochs_of_an_unsplit_tag(plain_server):
    """Why blocks / monitor.board exist: one tag with 12 epochs keeps only 10 of them."""
    steps = {e["step"] for e in _image_entries(plain_server, "single/monitor", "confusion_matrix/normalized")}
    assert len(steps) == 10 and steps < ALL_STEPS
    assert EPOCHS - 1 in steps  # the newest step is always kept


def test_board_command_serves_every_epoch_of_an_unsplit_tag(board_server):
    run = "single/monitor"
    for tag in ("confusion_matrix/normalized", "confusion_matrix/counts"):
        assert {e["step"] for e in _image_entries(board_server, run, tag)} == ALL_STEPS, tag
    for tag in ("text/per_class", "text/confused_pairs"):
        assert _text_steps(board_server, run, tag) == ALL_STEPS, tag


def test_tensorboard_command_flags():
    command = tensorboard_command("logs/x", port=6007, host="127.0.0.1",
                                  extra=["--reload_interval", "2", "--samples_per_plugin", "text=0"])
    assert command[:3] == [sys.executable, "-m", "tensorboard.main"]
    args = command[3:]
    assert args[args.index("--logdir") + 1] == "logs/x"
    assert args[args.index("--port") + 1] == "6007"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args.count("--samples_per_plugin") == 1
    assert args[args.index("--samples_per_plugin") + 1] == "images=1000,text=0,pr_curves=1000"
    assert args[-2:] == ["--reload_interval", "2"]
    plain = tensorboard_command("logs")[3:]
    assert "--port" not in plain and "--host" not in plain
