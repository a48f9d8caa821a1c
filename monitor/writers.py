"""The one place where event files are opened, written and flushed.

TensorBoard follows one active event file per directory, so `SummaryWriters`
keeps a single writer per directory (`EventFileWriter`: the summaries' protos framed as records,
no TensorFlow op), and runs rendering + writing in the background so the training thread only
hands work over.

Pictures are drawn in a child process (`monitor.drawing`, `drawing`): a background thread
hands it the arrays and waits, without the GIL, for the PNG bytes it writes.

The queue is worked in two ways. While training runs, one piece of work at a time, in the order
queued: drawing never takes more than one core from training. While someone waits for the queue
(`drain`: the end of `fit`, `close`), nothing trains, so its pieces are prepared side by side, as
many as the drawing process has forks (one per core, made as the last epoch begins), and written in
the order queued all the same: what a piece writes into event files is kept (`RecordedEvents`) until
every piece before it is written. A piece's own files (the JSONL lines of one callback) are written
as it is prepared: pieces of one `lane` (a callback) are never prepared at the same time.

It is a guest in the user's `fit`: a failure while rendering or writing (a full
disk, a figure that cannot be drawn) is warned about once and turns writing off
for the rest of the run; it is never raised into training. train.py asks for more
(`stop_on_storage_error`): a write that fails for want of space or permission is kept in
`storage_failure`, unwarned, for the run to stop on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable

from monitor import storage
from monitor.drawing import DrawingProcess, drawing_lanes
from monitor.gil import quick_handover
from monitor.picture_budget import PictureBudget
from monitor.runfiles.event_files import EventFileWriter, RecordedEvents

# While the queue is waited for, pieces prepared at once: more than the drawing processes, as some draw
# nothing (the numbers) and one's own work between its pictures (Grad-CAM's gradients) overlaps others'.
MAX_PREPARED = 8


class SummaryWriters:
    """Event-file writers of one run directory, plus an ordered work queue.

    Usage:
    ```python
    writers = SummaryWriters("logs/run1")
    writers.submit("monitor", lambda: summaries.text("note", "hello", step=0))
    writers.close()   # waits for queued work, flushes, closes
    ```
    `max_pending` bounds the queue: when rendering falls behind training,
    `submit` waits instead of letting work (and memory) pile up.
    `writing=False` (a non-chief worker) drops all work: no file, no directory.
    `stop_on_storage_error=True`: a write that fails for a full disk, a read-only file system
    or a removed directory (`monitor.storage`) is not warned about but kept as
    `storage_failure` (what, error): the caller stops the run (train.py does).
    """

    def __init__(self, logdir: str, max_pending: int = 16, background: bool = True,
                 writing: bool = True, stop_on_storage_error: bool = False, drawing_process: bool = True):
        self.logdir = os.path.abspath(logdir)
        self.max_pending = max_pending
        self.writing = writing
        self.failed: str | None = None  # what went wrong, once writing turned itself off
        self.stop_on_storage_error = stop_on_storage_error
        self.storage_failure: tuple[str, BaseException] | None = None
        self._writers: dict[str, EventFileWriter] = {}
        self._lock = threading.Lock()
        self._order = threading.Condition()  # the queue's turns (`_enqueue`)
        self._queued = 0  # pieces of work queued so far
        self._written = 0  # pieces whose turn to write is over (all in the order queued)
        self._waiting: deque = deque()  # (index, lane's piece before, prepare) not handed to a thread yet
        self._out = 0  # pieces handed to a thread and not written yet
        self._width = 1  # pieces handed out at once
        self._lanes: dict = {}  # lane -> the last piece queued in it
        self._widening_queued = False  # this fit's `expect_the_end` done
        self._background = background
        self._threads: list[threading.Thread] = []  # the background threads (`_work`)
        self._ready: deque = deque()  # (index, prepare) handed out, not taken by a thread yet
        self._idle = 0  # threads waiting for a piece
        self._stopping = False  # `close`: the threads end once nothing is ready
        self.busy_seconds = 0.0  # wall time spent rendering/writing (any thread)
        self.busy_cpu_seconds = 0.0  # CPU time of that thread meanwhile
        self._exit_hook = False  # close() registered to run at interpreter exit
        # Renderers come from here (`drawing.renderer(...)`); drawn in a child process unless
        # `drawing_process=False` or without a background thread (then drawn where asked).
        self.drawing = DrawingProcess(enabled=background and drawing_process)
        self.pictures = PictureBudget()  # which epochs get pictures (`monitor.picture_budget`)
        self._said_skipping = False
        self._picture_work = 0  # queued tasks that draw pictures, not done yet

    @property
    def drawing_cpu_seconds(self) -> float:
        """CPU seconds the drawing process spent on this run's pictures."""
        return self.drawing.cpu_seconds

    def prepare(self) -> None:
        """Training begins: start the drawing process now, so its imports overlap the first epoch
        (chief only), and the picture budget's clock."""
        self.pictures.start(time.monotonic(), time.process_time())
        self._widening_queued = False
        if self.active and self._background:
            self.drawing.start()

    def expect_the_end(self) -> None:
        """The last epoch begins: once the pictures queued before are drawn, fork the drawing process
        into one per core (`DrawingProcess.widen`), so that the last epoch's pictures, which `fit`
        waits for, are drawn side by side (`drain`). Once per fit."""
        if self._widening_queued or not (self.active and self._background and self.drawing.enabled):
            return
        self._widening_queued = True
        self._enqueue(lambda: self._widen_quietly, bounded=False)

    def _widen_quietly(self) -> None:
        """`DrawingProcess.widen` to every core; a failure leaves the processes there are drawing."""
        try:
            self.drawing.widen(drawing_lanes())
        except Exception:  # noqa: BLE001 - drawn by the processes there are
            pass

    def pictures_due(self, epoch: int, last: bool) -> bool:
        """Whether `epoch`'s pictures are drawn (`monitor.picture_budget`; the same answer for every
        callback asking about one epoch)."""
        due = self.pictures.due(epoch, last=last, spent_cpu_s=self.drawing.picture_cpu_seconds,
                                now=time.monotonic(), behind=self._picture_work > 0,
                                cpu_now=time.process_time())
        if not due and not self._said_skipping and self.active:
            self._said_skipping = True
            b = self.pictures
            print(f"monitor: drawing every epoch's pictures would take more than {b.share:.0%} of the CPU "
                  f"training leaves idle on this machine's {b.cores} core(s), so from epoch {epoch + 1} on "
                  "the suite draws TensorBoard images at the epochs that keep it within that (the first and "
                  "last always); every epoch's numbers and dashboard data are written. picture_budget=0 "
                  "(train.py --picture-budget 0) draws every epoch.", file=sys.stderr, flush=True)
        return due

    @property
    def active(self) -> bool:
        """Whether submitted work is still done (chief, and nothing failed)."""
        return self.writing and self.failed is None

    def fail(self, what: str, error: BaseException) -> None:
        """Turn writing off for the rest of the run, with one warning."""
        with self._lock:
            if self.failed is not None:
                return
            self.failed = f"{what}: {type(error).__name__}: {error}"
            if self.stop_on_storage_error and storage.is_storage_error(error):
                self.storage_failure = (what, error)
                return
        warnings.warn(f"monitor: {self.failed}. The monitoring suite writes nothing more in this run; "
                      "training goes on.", RuntimeWarning, stacklevel=2)

    def writer(self, subdir: str) -> EventFileWriter:
        path = os.path.join(self.logdir, subdir)
        with self._lock:
            if path not in self._writers:
                self._writers[path] = EventFileWriter(path)
                self._close_at_exit()
            return self._writers[path]

    def submit(self, subdir: str, work: Callable[[], None], what: str = "writing summaries",
               pictures: bool = False, lane=None) -> None:
        """Run `work()` with `subdir`'s writer as default; flushes afterwards. `pictures`: it draws
        pictures (counted until done, for the picture budget). `lane` (default: `what`): work of one
        lane is never prepared at the same time as another of that lane (`drain`).

        Does nothing once writing is off; a failure of `work` turns it off.
        """
        if not self.active:
            return
        if pictures:
            with self._lock:
                self._picture_work += 1

        def prepare() -> Callable[[], None] | None:
            try:
                return record() if self.active else None
            finally:
                if pictures:
                    with self._lock:
                        self._picture_work -= 1

        def record() -> Callable[[], None] | None:
            recorded = RecordedEvents()
            try:
                with self._timed():
                    writer = self.writer(subdir)  # the run's folders made before `work` writes its own files
                    with recorded.as_default():
                        work()
            except Exception as err:  # noqa: BLE001 - never into the user's fit
                self.fail(what, err)
                return None
            return lambda: write(writer, recorded)

        def write(writer: EventFileWriter, recorded: RecordedEvents) -> None:
            if not self.active:
                return
            try:
                with self._timed():
                    recorded.write_into(writer)
                    writer.flush()
            except Exception as err:  # noqa: BLE001
                self.fail(what, err)

        self._enqueue(prepare, bounded=True, lane=what if lane is None else lane)

    def rehearse(self, draw: Callable[[], object], lane=None) -> None:
        """Run `draw()` on the background thread and drop what it returns: pictures drawn on stand-in
        data while the first epoch trains, so that the drawing process has built their figures (and
        loaded its fonts) before the first real ones are due. It writes nothing; a failure is left to
        the real picture to report. Only where the pictures are drawn in the drawing process: drawn
        here, they would hold the training process's GIL for nothing."""
        if not (self.active and self._background and self.drawing.enabled):
            return

        def prepare() -> None:
            try:
                if self.active:
                    with self._timed():
                        draw()
            except Exception:  # noqa: BLE001 - stand-in data: the real picture says what fails
                pass

        self._enqueue(prepare, bounded=False, lane=lane)

    @contextlib.contextmanager
    def _timed(self):
        """Count the block's wall and CPU time (this thread's) as the background work's."""
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            with self._lock:
                self.busy_seconds += time.perf_counter() - start
                self.busy_cpu_seconds += time.thread_time() - cpu_start

    def write_now(self, subdir: str, work: Callable[[], None], what: str) -> None:
        """Run `work()` with `subdir`'s writer as default, then close; raise OSError if it failed.

        For one-off writers (a comparison, HParams) whose caller must know of a failure.
        """
        with warnings.catch_warnings():  # the caller reports the failure, once
            warnings.simplefilter("ignore", RuntimeWarning)
            self.submit(subdir, work, what=what)
            self.close()
        if self.failed is not None:
            raise OSError(self.failed)

    def submit_after_flush(self, work: Callable[[], None], what: str = "committing") -> None:
        """Run `work()` on the background thread once everything queued before it is
        written and every event file is flushed (in order, even if writing is off).

        For what must never get ahead of the summaries, such as committing a backup.
        A failure of `work` is warned about; it never turns writing off.
        """
        def commit() -> None:
            try:
                with self._lock:
                    writers = list(self._writers.values())
                for w in writers:
                    w.flush(durable=True)  # on disk before what is committed behind them
                work()
            except Exception as err:  # noqa: BLE001
                if self.stop_on_storage_error and storage.is_storage_error(err):
                    self.fail(what, err)
                    return
                warnings.warn(f"monitor: {getattr(work, '__qualname__', work)} failed: "
                              f"{type(err).__name__}: {err}", RuntimeWarning, stacklevel=2)

        self._enqueue(lambda: commit, bounded=False)

    def _enqueue(self, prepare: Callable[[], Callable[[], None] | None], bounded: bool, lane=None) -> None:
        """Queue a piece of work: `prepare()` on a background thread, then what it returns (None:
        nothing), called in the order the pieces were queued (inline, in turn, without a thread).

        While training runs (`_width` 1) one piece at a time is handed to a thread, in order: drawing
        never competes with training for more than one core, and no thread waits for its turn. While
        the queue is waited for (`drain`), up to `MAX_PREPARED` at once, never two of one lane."""
        if not self._background:
            then = prepare()
            if then is not None:
                then()
            return
        with self._order:
            self._close_at_exit()
            index = self._queued
            self._queued += 1
            after = self._lanes.get(lane, -1) if lane is not None else -1
            if lane is not None:
                self._lanes[lane] = index
            self._waiting.append((index, after, prepare))
            self._dispatch()
            if bounded:  # rendering fell behind training: wait rather than pile work (and memory) up
                self._order.wait_for(lambda: self._queued - self._written <= self.max_pending)

    def _dispatch(self) -> None:
        """Hand the queued pieces that may start now to threads (under `_order`): while fewer than
        `_width` are out, those whose lane's piece before them is written; the first piece not written
        always (the others may be waiting for its turn)."""
        kept: deque = deque()
        while self._waiting:
            index, after, prepare = self._waiting.popleft()
            if index == self._written or (self._out < self._width and after < self._written):
                self._out += 1
                self._ready.append((index, prepare))
                if self._idle < len(self._ready):
                    self._start_thread()
                self._order.notify_all()
            else:
                kept.append((index, after, prepare))
        self._waiting = kept

    def _start_thread(self) -> None:
        """One more background thread (under `_order`). Daemon threads: interpreter exit runs `close`
        (`_close_at_exit`), which waits for the queue, before it stops them."""
        self._stopping = False
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=self._work, name=f"monitor-writer-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        self._idle += 1  # counted as waiting from the start: `_dispatch` starts no second one for a piece
        thread.start()

    def _work(self) -> None:
        """A background thread: take the pieces handed out (`_dispatch`), one after another."""
        with self._order:
            while True:
                self._order.wait_for(lambda: self._ready or self._stopping)
                if not self._ready:
                    self._idle -= 1
                    return
                self._idle -= 1
                index, prepare = self._ready.popleft()
                self._order.release()
                try:
                    with quick_handover():  # beside the training loop, whose Python waits for the GIL
                        self._in_turn(index, prepare)
                finally:
                    self._order.acquire()
                    self._idle += 1

    def _in_turn(self, index: int, prepare) -> None:
        """Prepare piece `index`, then, once every piece before it is written, write it."""
        then = None
        try:
            then = prepare()
        except Exception as err:  # noqa: BLE001 - never into the user's fit
            self.fail("preparing summaries", err)
        finally:
            with self._order:
                self._order.wait_for(lambda: self._written == index)
            try:
                if then is not None:
                    then()
            except Exception as err:  # noqa: BLE001
                self.fail("writing summaries", err)
            finally:
                with self._order:
                    self._written += 1
                    self._out -= 1
                    self._dispatch()
                    self._order.notify_all()

    def _close_at_exit(self) -> None:
        """Ctrl-C, or a fit without on_train_end: interpreter exit still drains and flushes."""
        if not self._exit_hook:
            self._exit_hook = True
            atexit.register(self.close)

    def drain(self) -> None:
        """Wait for every submitted piece of work. Meanwhile nothing trains (`fit`'s end, `close`),
        so the pictures queued are drawn on every core: the drawing process forks into one process
        per core (up to `monitor.drawing.MAX_LANES`; done already when the last epoch began,
        `expect_the_end`) and up to `MAX_PREPARED` pieces are prepared at once."""
        with self._order:
            if self._written == self._queued:
                return
        widened = self._background and self._picture_work > 0 and self.drawing.enabled
        if widened:
            self._widen_quietly()
            with self._order:
                self._width = MAX_PREPARED if self.drawing.lanes > 1 else 1
                self._dispatch()
        try:
            with self._order:
                self._order.wait_for(lambda: self._written == self._queued)
        finally:
            if widened:
                with self._order:
                    self._width = 1

    def flush(self) -> None:
        self.drain()
        with self._lock:
            writers = list(self._writers.values())
        for w in writers:
            try:
                w.flush()
            except Exception as err:  # noqa: BLE001
                self.fail("flushing event files", err)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._lock:
                writers = list(self._writers.values())
                self._writers.clear()
            for w in writers:
                try:
                    w.close()
                except Exception as err:  # noqa: BLE001
                    self.fail("closing event files", err)
            with self._order:
                self._stopping = True
                self._order.notify_all()
                threads, self._threads = self._threads, []
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()
            self.drawing.close()
            atexit.unregister(self.close)
            self._exit_hook = False
