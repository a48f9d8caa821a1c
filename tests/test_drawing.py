"""The drawing process (monitor/drawing.py): a real child process, real renderers, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from monitor.drawing import DRAWING_NICENESS, DrawingFailed, DrawingProcess
from monitor.render import ConfusionHeatmapRenderer, PredictionGridRenderer, per_class_recall_bars

ROOT = Path(__file__).resolve().parents[1]
NAMES = [f"class_{i}" for i in range(10)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def drawing():
    d = DrawingProcess()
    yield d
    d.close()


def test_the_child_draws_the_same_bytes_as_this_process_epoch_after_epoch(drawing):
    remote = drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=True)
    local = ConfusionHeatmapRenderer(NAMES, normalized=True)
    rng = np.random.default_rng(0)
    for epoch in range(3):  # the child keeps its renderer: later epochs redraw only what changed
        cm = rng.integers(0, 40, (10, 10))
        assert remote.render(cm, f"epoch {epoch}") == local.render(cm, f"epoch {epoch}")
    recall, names = rng.random(40), [f"c{i}" for i in range(40)]
    drawn = drawing.function(per_class_recall_bars)(recall, names, "t")
    assert drawn == per_class_recall_bars(recall, names, "t")
    assert drawing.requests == 4 and drawing.cpu_seconds > 0


def test_work_without_pictures_draws_no_picture_but_its_data(drawing):
    remote = drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=True)
    bars = drawing.function(per_class_recall_bars)
    data = drawing.function(per_class_recall_bars, picture=False)  # as the dashboard's thumbnails
    recall, names = np.linspace(0, 1, 40), [f"c{i}" for i in range(40)]

    def work():
        return remote.render(np.eye(10, dtype=int), "t"), bars(recall, names, "t"), data(recall, names, "t")

    skipped = drawing.without_pictures(work)()
    assert skipped[:2] == (None, None) and skipped[2] == per_class_recall_bars(recall, names, "t")
    assert drawing.requests == 1  # nothing was asked of the child for the skipped pictures
    assert all(png is not None for png in work())  # the flag was this work's only
    assert drawing.picture_cpu_seconds > 0


def test_the_warm_up_as_the_child_starts_changes_no_picture():
    warm, cold = DrawingProcess(), DrawingProcess(warm_up=False)
    try:
        rng = np.random.default_rng(1)
        renderers = [d.renderer(ConfusionHeatmapRenderer, NAMES, normalized=False) for d in (warm, cold)]
        for epoch in range(2):
            cm = rng.integers(0, 40, (10, 10))
            first, second = (r.render(cm, f"epoch {epoch}") for r in renderers)
            assert first == second
        assert warm.requests == cold.requests == 2
    finally:
        warm.close()
        cold.close()


def test_the_child_is_niced_and_never_loads_tensorflow(drawing):
    drawing.start()
    pid = drawing._process.pid
    drawing.function(per_class_recall_bars)(np.ones(3), ["a", "b", "c"], "t")  # imports done
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
    assert int(fields[16]) == min(19, os.nice(0) + DRAWING_NICENESS)  # field 19 of stat: nice
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "matplotlib" in maps and "tensorflow" not in maps


def test_an_error_in_the_child_is_raised_here_and_the_child_goes_on(drawing):
    remote = drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=False)
    with pytest.raises(DrawingFailed, match="does not match 10 class names"):
        remote.render(np.zeros((3, 3), np.int64), "wrong shape")
    cm = np.eye(10, dtype=np.int64)
    assert remote.render(cm, "t") == ConfusionHeatmapRenderer(NAMES, normalized=False).render(cm, "t")


def _killed_after_one_picture(drawing):
    """A heatmap renderer of `drawing` and its matrix, drawn once by the child, which is then killed."""
    remote = drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=True)
    cm = np.eye(10, dtype=np.int64) * 5
    remote.render(cm, "t")
    os.kill(drawing._process.pid, signal.SIGKILL)
    drawing._process.wait()
    return remote, cm


def test_a_dead_child_means_drawing_here_with_one_warning(drawing):
    remote, cm = _killed_after_one_picture(drawing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert remote.render(cm, "t") == ConfusionHeatmapRenderer(NAMES, normalized=True).render(cm, "t")
    assert len(caught) == 1 and "draws its pictures in the training process" in str(caught[0].message)


def test_what_cannot_be_pickled_is_drawn_here_without_a_word(drawing):
    flip = lambda images: images[:, ::-1]  # noqa: E731 - a user's lambda: not picklable
    remote = drawing.renderer(PredictionGridRenderer, NAMES, 2, flip)
    local = PredictionGridRenderer(NAMES, 2, flip)
    images = np.random.default_rng(1).random((4, 8, 8, 3))
    args = (images, np.arange(4), np.arange(4)[::-1], np.full(4, 0.9), "t")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert remote.render(*args) == local.render(*args)
    assert drawing.requests == 0


def _forks(pid: int) -> list[int]:
    """The processes `pid` forked (Linux's /proc children list)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _drawn_side_by_side(remotes, locals_, seed: int) -> None:
    """Each of `remotes` draws a new matrix, all from threads started at once; each picture is the
    bytes its local twin draws."""
    cms = [np.random.default_rng(seed + i).integers(0, 40, (10, 10)) for i in range(len(remotes))]
    drawn = [None] * len(remotes)
    start = threading.Barrier(len(remotes))

    def draw(i):
        start.wait()
        drawn[i] = remotes[i].render(cms[i], f"side by side {seed}")

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(len(remotes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert drawn == [local.render(cm, f"side by side {seed}") for local, cm in zip(locals_, cms, strict=True)]


def test_widened_the_child_draws_side_by_side_from_the_figures_it_had(monkeypatch):
    monkeypatch.setattr("monitor.drawing.drawing_lanes", lambda: 2)
    drawing = DrawingProcess()
    try:
        kinds = [True, False, True, False]
        remotes = [drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=k) for k in kinds]
        locals_ = [ConfusionHeatmapRenderer(NAMES, normalized=k) for k in kinds]
        _drawn_side_by_side(remotes, locals_, 0)  # one process: one at a time
        assert drawing.lanes == 1 and drawing.pictures_per_process == [4]
        assert drawing.widen(4) == 2 and drawing.forks == 1  # as many as it was given pipes for
        child = drawing._process.pid
        (fork,) = _forks(child)
        assert os.getpriority(os.PRIO_PROCESS, fork) == os.getpriority(os.PRIO_PROCESS, 0) + DRAWING_NICENESS
        for seed in (1, 2):  # every figure is in both processes: each draws any renderer, same bytes
            _drawn_side_by_side(remotes, locals_, seed)
        first, second = drawing.pictures_per_process
        assert first >= 1 and second >= 1 and first + second == 12
        assert drawing.widen(2) == 2 and drawing.forks == 1  # no more than it has
    finally:
        drawing.close()
    assert _wait_gone(child) and _wait_gone(fork), "the drawing processes outlived close()"


def test_a_dead_fork_means_drawing_here_with_one_warning(monkeypatch):
    monkeypatch.setattr("monitor.drawing.drawing_lanes", lambda: 2)
    drawing = DrawingProcess()
    try:
        remotes = [drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=True) for _ in range(2)]
        locals_ = [ConfusionHeatmapRenderer(NAMES, normalized=True) for _ in range(2)]
        _drawn_side_by_side(remotes, locals_, 0)
        assert drawing.widen(2) == 2
        (fork,) = _forks(drawing._process.pid)
        os.kill(fork, signal.SIGKILL)
        assert _wait_gone(fork)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for seed in (1, 2, 3):
                _drawn_side_by_side(remotes, locals_, seed)
        said = [str(w.message) for w in caught]
        assert len(said) == 1 and "draws its pictures in the training process" in said[0], said
        assert drawing.lanes == 0
    finally:
        drawing.close()


def test_widening_a_dead_child_raises_nothing_and_draws_here(drawing):
    remote, cm = _killed_after_one_picture(drawing)
    with pytest.warns(RuntimeWarning, match="draws its pictures in the training process"):
        assert drawing.widen(2) == 0
    assert remote.render(cm, "t") == ConfusionHeatmapRenderer(NAMES, normalized=True).render(cm, "t")


class DiskFullRenderer:
    """A renderer that fails as a full disk would; the drawing process imports it from here."""

    def __init__(self, *args, **kwargs):
        pass

    def render(self, *args, **kwargs):
        raise OSError(28, "No space left on device")


def test_a_failure_in_the_drawing_process_is_the_suites_one_warning(tmp_path):
    from monitor import summaries
    from monitor.writers import SummaryWriters

    writers = SummaryWriters(str(tmp_path))
    failing = writers.drawing.renderer(DiskFullRenderer)
    with pytest.warns(RuntimeWarning) as caught:
        for step in range(3):
            writers.submit("monitor", lambda step=step: summaries.png_image("x", failing.render(), step))
        writers.close()
    said = [str(w.message) for w in caught if "monitor:" in str(w.message)]
    assert len(said) == 1 and "No space left on device" in said[0] and "writes nothing more" in said[0]
    assert writers.drawing.requests == 1  # writing turned off after the first failure


def test_a_renderer_the_child_cannot_import_is_drawn_here(drawing, tmp_path, monkeypatch):
    drawing.start()  # its path is fixed now: a folder added later is the training process's alone
    (tmp_path / "late_renderer.py").write_text(
        "class Late:\n    def render(self, n):\n        return b'late' * n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from late_renderer import Late

    late = drawing.renderer(Late)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert late.render(2) == b"latelate" and late.render(3) == b"latelatelate"
    assert drawing.requests == 1  # asked once; drawn here from then on
    remote = drawing.renderer(ConfusionHeatmapRenderer, NAMES, normalized=True)
    cm = np.eye(10, dtype=np.int64)
    assert remote.render(cm, "t") == ConfusionHeatmapRenderer(NAMES, normalized=True).render(cm, "t")
    assert drawing.requests == 2  # the child goes on drawing what it can read


def test_ctrl_c_is_the_training_process_and_a_killed_parent_leaves_no_child(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        import numpy as np
        from monitor.drawing import DrawingProcess
        from monitor.render import per_class_recall_bars
        d = DrawingProcess()
        d.function(per_class_recall_bars)(np.ones(3), ["a", "b", "c"], "t")
        print(d._process.pid, flush=True)
        time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        child = int(parent.stdout.readline())
        os.kill(child, signal.SIGINT)  # a Ctrl-C reaches the whole group; the child leaves it to the parent
        time.sleep(0.5)
        assert _alive(child)
        parent.kill()
        parent.wait()
        assert _wait_gone(child), "the drawing process outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def _suite_pictures(run_dir: str, rehearse: bool, classes: int, monkeypatch, epochs: int = 1,
                    lanes: int | None = None) -> tuple[dict, int]:
    """A fit of a model that does not learn (the same predictions in every fit) with the suite: its
    images {tag: [PNG bytes per step]}, and the requests its drawing process answered (`lanes`: the
    drawing processes it may fork into for the end; None: as many as this machine's cores allow)."""
    import keras

    from callbacks import close_suite, monitoring_callbacks
    from callbacks.base import ValidationSummaryCallback
    from monitor.capture import EvaluationCapture
    from tests.helpers import NAMES, accumulator, tiny_data, tiny_model

    with monkeypatch.context() as patch:
        if not rehearse:
            patch.setattr(EvaluationCapture, "stand_in", lambda self: None)
        if lanes is not None:
            patch.setattr("monitor.drawing.drawing_lanes", lambda: lanes)
            patch.setattr("monitor.writers.drawing_lanes", lambda: lanes)
        x, y = tiny_data(240, classes=classes)
        model = tiny_model(classes=classes)
        model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
        names = NAMES if classes == len(NAMES) else [f"class {i}" for i in range(classes)]
        suite = monitoring_callbacks(names, run_dir)
        model.fit(x, y, validation_split=0.3, epochs=epochs, batch_size=32, callbacks=suite, verbose=0)
        close_suite(suite)
    drawing = next(c.writers.drawing for c in suite if isinstance(c, ValidationSummaryCallback))
    acc = accumulator(os.path.join(run_dir, "monitor"))
    images = {t: [e.tensor_proto.string_val[2] for e in acc.Tensors(t)] for t in acc.Tags()["tensors"]
              if acc.SummaryMetadata(t).plugin_data.plugin_name == "images"}
    return images, drawing.requests, drawing.forks


# drawn on stand-ins first, up to 30 classes: the reliability diagram, the normalised heatmap and the
# probability bars (not the counts heatmap, whose scale needs the counts, nor pictures of titled
# images); above 30 classes nothing (the large heatmap gains nothing from it)
@pytest.mark.parametrize("classes, rehearsed", [(3, 3), (40, 0)])
def test_figures_built_on_stand_ins_while_the_first_epoch_trains_change_no_picture(tmp_path, monkeypatch,
                                                                                   classes, rehearsed):
    with_stand_ins, asked, _ = _suite_pictures(str(tmp_path / "rehearsed"), True, classes, monkeypatch)
    plain, asked_plain, _ = _suite_pictures(str(tmp_path / "plain"), False, classes, monkeypatch)
    assert len(plain) >= 8 and with_stand_ins == plain  # every image, byte for byte
    assert asked - asked_plain == rehearsed


def test_the_last_epochs_pictures_drawn_side_by_side_are_the_same_bytes(tmp_path, monkeypatch):
    """The drawing process forks as the last epoch begins and the end's pictures are drawn by both:
    every image of a 2-epoch fit is the same as with one drawing process."""
    side_by_side, _, forks = _suite_pictures(str(tmp_path / "two"), True, 3, monkeypatch, epochs=2, lanes=2)
    one, _, no_forks = _suite_pictures(str(tmp_path / "one"), True, 3, monkeypatch, epochs=2, lanes=1)
    assert (forks, no_forks) == (1, 0)
    assert len(one) >= 8 and all(len(pngs) == 2 for pngs in one.values()) and side_by_side == one
