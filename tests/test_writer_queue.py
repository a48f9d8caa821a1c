"""The suite's work queue (monitor/writers.py): one piece at a time while training runs, side by side
while the queue is waited for, written in the order queued either way. A real drawing process."""

from __future__ import annotations

import threading
import time

import numpy as np
from tensorboard.compat.proto import event_pb2

from monitor import summaries
from monitor.render import per_class_recall_bars
from monitor.runfiles.event_files import framed_records, paths
from monitor.writers import SummaryWriters


def _steps_in_file_order(folder: str) -> list[int]:
    """The steps of the `order` scalars in the event files of `folder`, in the order written."""
    steps = []
    for path in paths(folder):
        for _, data in framed_records(path):
            event = event_pb2.Event.FromString(data)
            if any(v.tag == "order" for v in event.summary.value):
                steps.append(event.step)
    return steps


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_pieces_are_prepared_side_by_side_only_while_waited_for_and_written_in_the_order_queued(
        tmp_path, monkeypatch):
    monkeypatch.setattr("monitor.writers.drawing_lanes", lambda: 2)
    monkeypatch.setattr("monitor.drawing.drawing_lanes", lambda: 2)
    writers = SummaryWriters(str(tmp_path))
    writers.prepare()
    bars = writers.drawing.function(per_class_recall_bars)
    spans: dict[int, tuple[float, float]] = {}
    lock = threading.Lock()

    def piece(i: int, seconds: float):
        def work():
            start = time.monotonic()
            png = bars(np.linspace(0.1, 1, 5), list("abcde"), f"piece {i}")
            time.sleep(seconds)
            summaries.png_image("bars", png, i)
            summaries.scalars({"order": i}, i)
            with lock:
                spans[i] = (start, time.monotonic())
        return work

    for i in range(3):  # training runs: nobody waits for the queue
        writers.submit("monitor", piece(i, 0.1), pictures=True, lane=i)
    deadline = time.monotonic() + 60
    while len(spans) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    seen_by_commit = []
    writers.submit_after_flush(lambda: seen_by_commit.append(_steps_in_file_order(str(tmp_path / "monitor"))))
    for i in range(3, 9):  # the earlier pieces take longer; 3 and 4 share a lane
        writers.submit("monitor", piece(i, 0.4 - 0.04 * i), pictures=True, lane="shared" if i < 5 else i)
    writers.close()  # waits for the queue: side by side

    assert writers.failed is None
    assert _steps_in_file_order(str(tmp_path / "monitor")) == list(range(9))
    assert seen_by_commit == [[0, 1, 2]]  # a commit behind pieces sees them on disk, no later one
    assert not any(_overlap(spans[a], spans[b]) for a in range(3) for b in range(a + 1, 3))
    assert any(_overlap(spans[a], spans[b]) for a in range(3, 9) for b in range(a + 1, 9))
    assert not _overlap(spans[3], spans[4])
    assert writers.drawing.forks == 1


def test_without_a_background_thread_pieces_run_in_turn_where_queued(tmp_path):
    writers = SummaryWriters(str(tmp_path), background=False)
    done = []
    for i in range(3):
        writers.submit("monitor", lambda i=i: (done.append(i), summaries.scalars({"order": i}, i)))
        assert done == list(range(i + 1))
    writers.submit_after_flush(lambda: done.append(_steps_in_file_order(str(tmp_path / "monitor"))))
    writers.close()
    assert done == [0, 1, 2, [0, 1, 2]]
