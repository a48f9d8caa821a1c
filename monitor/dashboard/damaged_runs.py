"""Runs whose event files are damaged, read past the damage for the dashboard.

TensorBoard's Python loader stops reading an event file at a record whose checksum fails (it
waits for that record to become whole), and its Rust loader gives up on a file at a damaged
length field: the epochs after the damage never reach the data provider. `DamageWatch` checks
each run the dashboard lists, in a background thread and incrementally (each check reads only
what was appended since the last, as TensorBoard's loaders do), with `monitor.runfiles.event_files`'
reader, which skips a damaged record and reads on. A run found damaged is then read from its files
by that reader (`RunTensors`: every intact record of this plugin's data), and its damage is said
once: in the server's log and, through the plugin's answers, on the page.

    watch = DamageWatch(context.logdir)
    state = watch.check(run)         # never blocks: schedules a check when the last is stale
    if state is not None:            # damaged: serve state.tensors, say state.text
        ...
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field

from tensorboard.compat.proto import event_pb2
from tensorboard.data import provider
from tensorboard.util import tensor_util

from monitor.dashboard import metadata
from monitor.runfiles import damage, event_files

RECHECK_S = 2.0  # a run's files are looked at again at most this often (the first time too)
BUSY_S = 0.02  # the watch works this long, then rests as long: half the GIL at most, while pages ask


class RunTensors:
    """One run's data of this plugin, as read from its event files: a data provider's listing and
    datums for that run (for a step written twice, the last written)."""

    def __init__(self):
        self._series: dict[str, dict[int, provider.TensorDatum]] = {}
        self._content: dict[str, bytes] = {}
        self._lock = threading.Lock()  # added to by the watch's thread while requests read

    def add(self, event: event_pb2.Event) -> None:
        with self._lock:
            self._add(event)

    def _add(self, event: event_pb2.Event) -> None:
        for value in event.summary.value:
            meta = value.metadata.plugin_data
            if meta.plugin_name == metadata.PLUGIN_NAME and value.tag not in self._content:
                self._content[value.tag] = meta.content
            if value.tag in self._content and value.HasField("tensor"):
                self._series.setdefault(value.tag, {})[event.step] = provider.TensorDatum(
                    step=event.step, wall_time=event.wall_time, numpy=tensor_util.make_ndarray(value.tensor))

    def listing(self) -> dict[str, provider.TensorTimeSeries]:
        with self._lock:
            return self._listing()

    def _listing(self) -> dict[str, provider.TensorTimeSeries]:
        out = {}
        for tag, by_step in self._series.items():
            newest = max(by_step)
            out[tag] = provider.TensorTimeSeries(
                max_step=newest, max_wall_time=max(d.wall_time for d in by_step.values()),
                plugin_content=self._content[tag], description="", display_name="")
        return out

    def read(self, tags) -> dict[str, list[provider.TensorDatum]]:
        with self._lock:
            return {tag: [self._series[tag][s] for s in sorted(self._series[tag])] for tag in tags
                    if tag in self._series}


@dataclass
class _File:
    damage: event_files.Damage  # what was skipped so far
    identity: tuple = ()  # (inode, size) when last read
    offset: int = 0  # where the next unread record starts


@dataclass
class RunState:
    """What is known of one run's files: `text` (what is skipped, empty while nothing is) and, for a
    run found damaged (in this server's life), `tensors` (its data read past the damage)."""

    folder: str
    files: dict[str, _File] = field(default_factory=dict)
    tensors: RunTensors | None = None
    text: str = ""
    checked: float = float("-inf")


class DamageWatch:
    """`check(run)`: the run's state when its files are damaged, else None (see the module)."""

    def __init__(self, logdir: str | None, recheck_s: float = RECHECK_S):
        root = os.path.realpath(logdir) if logdir and "://" not in logdir else None
        self._root = root if root and os.path.isdir(root) else None
        self._recheck_s = recheck_s
        self._runs: dict[str, RunState] = {}
        self._due: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, run: str) -> RunState | None:
        """The state of a listed `run` found damaged (None: not found damaged, or not known yet);
        schedules a check of its files when the last one is older than `recheck_s`."""
        if self._root is None:
            return None
        with self._lock:
            state = self._runs.get(run)
            if state is None:
                folder = os.path.realpath(os.path.join(self._root, run))
                if os.path.commonpath([folder, self._root]) != self._root:
                    return None
                # first looked at after `recheck_s`, not while the first page opens
                state = self._runs[run] = RunState(folder, checked=time.monotonic())
            if time.monotonic() - state.checked >= self._recheck_s and run not in self._due:
                self._due.append(run)
                self._start()
            return state if state.tensors is not None else None

    def damaged(self, run: str) -> RunState | None:
        """The state of `run` if it is known to be damaged; schedules nothing."""
        with self._lock:
            state = self._runs.get(run)
            return state if state is not None and state.tensors is not None else None

    def _start(self) -> None:
        self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="damage-watch", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                if not self._due:
                    self._wake.clear()
                    continue
                run = self._due.pop(0)
                state = self._runs[run]
            try:
                read_new(state, pace=_Pace())
            except OSError:
                pass  # the folder went away or cannot be read: TensorBoard says so; checked again later
            state.checked = time.monotonic()


class _Pace:
    """Called between records: after `BUSY_S` of work, rests as long."""

    def __init__(self):
        self._since = time.monotonic()

    def __call__(self) -> None:
        worked = time.monotonic() - self._since
        if worked >= BUSY_S:
            time.sleep(worked)
            self._since = time.monotonic()


def read_new(state: RunState, pace=lambda: None) -> None:
    """Reads what was appended to the run's event files since the last call; on finding damage,
    reads the run again from the start keeping its data (`state.tensors`, replaced whole, so a
    request never sees it half read) and says it once (`state.text`: what is skipped now; empty
    again after a repair). `pace()` is called between records."""
    if not _read_files(state.folder, state.files, state.tensors, pace):  # rewritten (`monitor.repair`)
        # read again from the start; a run once damaged stays read from its files, since TensorBoard's
        # Python loader keeps reading the file it had open, stuck at the damage, until it restarts
        files, tensors = {}, RunTensors() if state.tensors is not None else None
        _read_files(state.folder, files, tensors, pace)
        state.files, state.tensors = files, tensors
    if state.tensors is None and any(f.damage.records for f in state.files.values()):
        files, tensors = {}, RunTensors()
        _read_files(state.folder, files, tensors, pace)
        state.files, state.tensors = files, tensors
    skipped = {p: dataclasses.replace(f.damage, cut_short=False).describe()  # a cut end: still being written
               for p, f in sorted(state.files.items()) if f.damage.records}
    for path, text in skipped.items():
        damage.say(path, text)  # once per file and process: the server's log
    state.text = "; ".join(f"{os.path.basename(p)}: {t}" for p, t in skipped.items())


def _read_files(folder: str, files: dict[str, _File], tensors: RunTensors | None, pace) -> bool:
    """Reads each event file of `folder` on from where `files` says it was left, into `tensors` (when
    given); False, having stopped, when a file was rewritten since (another inode, or shorter)."""
    for path in event_files.paths(folder):
        stat = os.stat(path)
        known = files.get(path)
        if known is not None and (stat.st_ino != known.identity[0] or stat.st_size < known.identity[1]):
            return False
        if known is None:
            known = files[path] = _File(event_files.Damage(path))
        if known.identity == (stat.st_ino, stat.st_size):
            continue
        known.identity = (stat.st_ino, stat.st_size)
        for stop, data in event_files.events_from(path, known.offset, known.damage):
            pace()
            known.offset = stop
            if data is not None and tensors is not None:
                tensors.add(event_pb2.Event.FromString(data))
    return True
