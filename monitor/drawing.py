"""Drawing in a child process of lower priority: the suite's pictures never hold the training
process's GIL, and compete for its cores at a lower priority (not for free: on cores that training
keeps busy, `bench/background_cost.py` measures what work beside it costs).

`DrawingProcess` starts `python -m monitor.drawing` (not `multiprocessing`, whose start methods
import the user's own `__main__` again in the child), niced by `DRAWING_NICENESS`, and speaks to
it over a pipe: length-prefixed pickles of small arrays out, PNG bytes back, one request at a
time (the suite's one writer thread asks, and waits without the GIL while the child draws).
The child keeps each renderer (`monitor.render`'s classes, which redraw only what changed between
epochs) for the run, under the key of its proxy.

When nothing trains any more and the suite's queue is being waited for (the end of `fit`), one
child is not the best use of the machine: `widen(n)` forks it into up to `n` drawing processes
(`drawing_lanes()`: the cores, up to 4), each starting with every figure the child had built, and
requests from several threads are then drawn side by side. A renderer stays in the process that
drew it last (its figure is there); any of them draws the same bytes.

```python
drawing = DrawingProcess()
heatmap = drawing.renderer(ConfusionHeatmapRenderer, names, normalized=True)
png = heatmap.render(cm, "epoch 3")             # drawn in the child
png = drawing.function(reliability_png)(stats, "epoch 3")
drawing.widen(2)                                # two processes from here on
drawing.close()
```

Only our own child reads what we pickle, and we read only what it sends back. When the child
cannot start or dies, drawing carries on in this process (same renderers, same bytes), said
once; `enabled=False` draws here from the start.
"""

from __future__ import annotations

import gc
import itertools
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path

DRAWING_NICENESS = 10  # added to the training process's niceness in the child
MAX_LANES = 4  # drawing processes at most, once `widen` is asked for
# A picture allocates tens of thousands of objects (matplotlib's artists, transforms, paths), so the
# cyclic collector, at Python's default of a young collection per 700 allocations, took about a
# tenth of the child's drawing time; there, with nothing else running, it runs 70x less often.
GC_THRESHOLDS = (50_000, 20, 100)
_HEADER = struct.Struct("<Q")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


class _Unreadable(Exception):
    """The child could not unpickle a request (a class only the training process can import)."""


class DrawingFailed(RuntimeError):
    """The child raised while drawing (the message carries its error); the caller handles it as
    any drawing error."""


class DrawingProcess:
    """The child that draws the suite's pictures; see the module docstring."""

    def __init__(self, enabled: bool = True, niceness: int = DRAWING_NICENESS, warm_up: bool = True):
        self.enabled = enabled
        self.niceness = niceness
        self.warm_up = warm_up  # the child's `warm_up()` as it starts (False: for benchmarks)
        self.cpu_seconds = 0.0  # CPU time spent drawing (as the child reports it), its warm-up included
        self.picture_cpu_seconds = 0.0  # the same without the warm-up: what the pictures cost
        self.cpu_by_picture: dict[str, float] = {}  # the same by renderer (or function) name
        self.requests = 0
        self.forks = 0  # drawing processes forked from the child (`widen`), over its life
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # the child's start and stop, and the choice of a lane
        self._count_lock = threading.Lock()
        self._here_lock = threading.Lock()  # drawing here: one picture at a time
        self._lanes: list[_Lane] = []  # the processes drawing: the child's pipes first, then its forks'
        self._spares: list[_Lane] = []  # pipes the child was given for forks not made yet
        self._pinned: dict = {}  # renderer key -> the lane that drew it last, since the last fork
        self._keys = itertools.count()
        self._local: dict[int, object] = {}  # renderers drawn here (the child gone, or it cannot read them)
        self._here: set = set()  # keys (or functions) the child could not unpickle: drawn here
        self._said = False
        self._ending = None  # weakref.finalize ending the child
        self._skipping = threading.local()  # `.on`: this thread's pictures are not drawn

    # -- proxies -----------------------------------------------------------
    def renderer(self, factory, *args, **kwargs) -> RemoteRenderer:
        """A stand-in for `factory(*args, **kwargs)` (a renderer class of `monitor.render`) whose
        `render*` methods draw in the child."""
        return RemoteRenderer(self, next(self._keys), factory, args, kwargs)

    def function(self, fn, picture: bool = True):
        """`fn` (a module-level function returning PNG bytes), called in the child. `picture=False`:
        what it draws is data (the dashboard's thumbnails), drawn even where pictures are skipped."""
        def call(*args, **kwargs):
            if picture and self.skipping:
                return None
            return self.call(None, fn, (), {}, None, args, kwargs)
        call.__name__ = getattr(fn, "__name__", "draw")
        return call

    @property
    def skipping(self) -> bool:
        """Whether pictures asked for on this thread now are skipped (answered None)."""
        return getattr(self._skipping, "on", False)

    def without_pictures(self, work):
        """`work`, run so that every picture it asks for is answered None (not drawn): for an
        epoch whose pictures the budget skips (`monitor.picture_budget`)."""
        def run():
            self._skipping.on = True
            try:
                return work()
            finally:
                self._skipping.on = False
        return run

    # -- the child -----------------------------------------------------------
    def start(self) -> None:
        """Start the child now (it imports matplotlib while the first epoch trains); a no-op when
        started, disabled, or when it cannot start (drawing then stays here)."""
        with self._lock:
            self._start()

    def _start(self) -> bool:
        if not self.enabled:
            return False
        if self._process is not None and self._process.poll() is None:
            return True
        if self._process is not None:  # it died: draw here from now on
            self._give_up("the drawing process ended")
            return False
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(_child_path()))
        spares, theirs = _spare_pipes(drawing_lanes() - 1)
        their_fds = [fd for pair in theirs for fd in pair]
        try:
            mode = "warm" if self.warm_up else "cold"
            self._process = subprocess.Popen(
                [sys.executable, "-m", "monitor.drawing", str(self.niceness), mode,
                 ",".join(f"{r}:{w}" for r, w in theirs)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=env, close_fds=True, pass_fds=their_fds)
        except OSError as err:
            _close_all([lane.pipe_in for lane in spares] + [lane.pipe_out for lane in spares])
            self._give_up(f"cannot start the drawing process ({err})")
            return False
        finally:
            for fd in their_fds:
                os.close(fd)  # the child's ends
        self._lanes = [_Lane(self._process.stdin, self._process.stdout)]
        self._spares, self._pinned = spares, {}
        pipes = [self._process.stdin, self._process.stdout] + [
            pipe for lane in spares for pipe in (lane.pipe_in, lane.pipe_out)]
        self._ending = weakref.finalize(self, _end, self._process, pipes)  # at the latest at exit
        return True

    @property
    def pictures_per_process(self) -> list[int]:
        """The pictures asked of each drawing process now running (the child's first, then its forks')."""
        return [lane.asked for lane in self._lanes]

    @property
    def lanes(self) -> int:
        """How many processes draw now (0: none; drawing is done here)."""
        return len(self._lanes) if self.enabled and self._process is not None else 0

    def widen(self, lanes: int) -> int:
        """Fork the child, as it is now (every figure it has built), into up to `lanes` drawing
        processes (at most the spare pipes it was given: `drawing_lanes()`), for requests made from
        several threads at once; returns how many there are. A no-op where the child does not run or
        the system cannot fork."""
        with self._lock:
            if not hasattr(os, "fork") or not self._start():
                return self.lanes
            first, spares = self._lanes[0], self._spares[:max(0, lanes - len(self._lanes))]
            self._spares = self._spares[len(spares):]
        with first.lock:  # after the picture it may be drawing, so that the copies have its figure
            for spare in spares:
                payload = pickle.dumps((None, None, (), {}, "fork", (spare.number,), {}),
                                       protocol=pickle.HIGHEST_PROTOCOL)
                try:
                    if first.closed:
                        break
                    self._ask(first, payload, "fork", count=False)
                except (OSError, EOFError, ValueError, pickle.UnpicklingError, _Unreadable, DrawingFailed):
                    break  # the lanes there are draw on; a dead child is found by the next picture
                with self._lock:
                    self._lanes.append(spare)
                    self._pinned = {}  # every process now has every figure
                    self.forks += 1
        return self.lanes

    def call(self, key, factory, fargs, fkwargs, method, args, kwargs):
        """Draw: `factory(*fargs, **fkwargs)` kept under `key` (or, key None, `factory` itself
        called), its `method` called with `args`/`kwargs`. In the child when it runs."""
        target = key if key is not None else factory
        with self._lock:
            lane = self._lane_for(key) if target not in self._here and self._start() else None
        if lane is not None:
            try:  # what cannot be pickled (a user's lambda as display transform) is drawn here
                payload = pickle.dumps((key, factory, fargs, fkwargs, method, args, kwargs),
                                       protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PickleError, AttributeError, TypeError):
                payload = None
            try:
                with lane.lock:
                    if payload is not None and not lane.closed:
                        return self._ask(lane, payload, _name(factory))
            except _Unreadable:
                self._here.add(target)
            except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
                with self._lock:
                    self._give_up(f"the drawing process failed ({type(err).__name__}: {err})")
            finally:
                with self._lock:
                    lane.waiting -= 1
        return self._draw_here(key, factory, fargs, fkwargs, method, args, kwargs)

    def _lane_for(self, key) -> _Lane:
        """The lane to draw on (under `_lock`): the one with the fewest requests in hand, and of
        those the one that drew this renderer last (its figure is up to date there; any other
        process has it as it was at the fork, and draws the same bytes)."""
        last = self._pinned.get(key)
        lane = min(self._lanes, key=lambda each: (each.waiting, each is not last))
        if key is not None and len(self._lanes) > 1:
            self._pinned[key] = lane
        lane.waiting += 1  # requests given to it and not answered yet (`call` counts them down)
        return lane

    def _ask(self, lane: _Lane, payload: bytes, name: str, count: bool = True):
        lane.asked += count
        lane.pipe_in.write(_HEADER.pack(len(payload)) + payload)
        lane.pipe_in.flush()
        answer = _read_exactly(lane.pipe_out, _read_size(lane.pipe_out))
        status, value, cpu, warm_up_cpu = pickle.loads(answer)
        if count:
            self._count(name, cpu, warm_up_cpu, request=True)
        if status == "unreadable":
            raise _Unreadable(value)
        if status != "ok":
            raise DrawingFailed(value)
        return value

    def _count(self, name: str, cpu: float, warm_up_cpu: float = 0.0, request: bool = False) -> None:
        with self._count_lock:
            self.requests += request
            self.cpu_seconds += cpu + warm_up_cpu
            self.picture_cpu_seconds += cpu
            self.cpu_by_picture[name] = self.cpu_by_picture.get(name, 0.0) + cpu + warm_up_cpu

    def _draw_here(self, key, factory, fargs, fkwargs, method, args, kwargs):
        with self._here_lock:
            start = time.thread_time()
            try:
                if key is None:
                    return factory(*args, **kwargs)
                if key not in self._local:
                    self._local[key] = factory(*fargs, **fkwargs)
                return getattr(self._local[key], method)(*args, **kwargs)
            finally:
                self._count(_name(factory), time.thread_time() - start)

    def _give_up(self, why: str) -> None:
        self.enabled = False
        self._stop()
        if not self._said:
            self._said = True
            warnings.warn(f"monitor: {why}; the suite draws its pictures in the training process from "
                          "now on (they stay the same; training may slow a little).", RuntimeWarning,
                          stacklevel=4)

    def _stop(self) -> None:
        if self._process is not None:
            self._process = None
            for lane in self._lanes:
                lane.closed = True
            self._lanes, self._spares, self._pinned = [], [], {}
            self._ending()

    def close(self) -> None:
        """End the child (it exits when its pipe closes); drawing later starts a new one."""
        with self._lock:
            self._stop()
            self._local.clear()


class _Lane:
    """One drawing process as this process sees it: the pipe its requests go into, the pipe its
    answers come out of, and the lock that keeps one request at a time on them."""

    def __init__(self, pipe_in, pipe_out, number: int = 0):
        self.pipe_in, self.pipe_out, self.number = pipe_in, pipe_out, number
        self.lock = threading.Lock()
        self.waiting = 0
        self.asked = 0  # pictures asked of it
        self.closed = False


def drawing_lanes() -> int:
    """How many drawing processes `widen` may make: the cores this process may use, up to MAX_LANES."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_LANES, cores))


def _spare_pipes(count: int) -> tuple[list[_Lane], list[tuple[int, int]]]:
    """`count` pairs of pipes for the child's forks: ours (lanes, not in use yet) and the child's
    ends (request read end, answer write end), which it is given when it starts."""
    ours, theirs = [], []
    if not hasattr(os, "fork"):
        return ours, theirs
    for number in range(1, count + 1):
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        ours.append(_Lane(os.fdopen(request_w, "wb"), os.fdopen(answer_r, "rb"), number))
        theirs.append((request_r, answer_w))
    return ours, theirs


def _close_all(pipes) -> None:
    for pipe in pipes:
        try:
            pipe.close()
        except OSError:
            pass


class RemoteRenderer:
    """A renderer drawn by a `DrawingProcess`: `render(...)`, `render_texts(...)` and any other
    `render*` method of the renderer it stands for, same arguments, same PNG bytes."""

    def __init__(self, drawing: DrawingProcess, key: int, factory, args: tuple, kwargs: dict):
        self._drawing, self._key = drawing, key
        self._factory, self._args, self._kwargs = factory, args, kwargs

    def __getattr__(self, method: str):
        if not method.startswith("render"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            if self._drawing.skipping:
                return None
            return self._drawing.call(self._key, self._factory, self._args, self._kwargs, method, args,
                                      kwargs)
        return call


def _name(factory) -> str:
    """What `cpu_by_picture` counts a drawing under: its renderer's (or function's) name."""
    return getattr(factory, "__name__", str(factory))


def _child_path() -> list[str]:
    """The child's PYTHONPATH: this package's root, then the folders the training process added to
    sys.path (its script's folder, say), so what it pickles by reference can be imported there."""
    system = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    added = [os.path.abspath(p or os.getcwd()) for p in sys.path
             if not any(os.path.realpath(p or os.getcwd()).startswith(root) for root in system)]
    return list(dict.fromkeys([_PACKAGE_ROOT, *added]))


def _end(process: subprocess.Popen, pipes: list) -> None:
    """Close the pipes of the child and of its forks (each exits on reading the end), and reap the
    child (which reaps its forks before it exits) on a thread of its own: nobody waits for its exit
    (unmapping a process that drew for a while takes tens of milliseconds)."""
    _close_all(pipes)
    try:
        threading.Thread(target=_reap, args=(process,), name="monitor-drawing-reaper", daemon=True).start()
    except RuntimeError:  # the interpreter is exiting: no new thread
        _reap(process)


def _reap(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_size(pipe) -> int:
    return _HEADER.unpack(_read_exactly(pipe, _HEADER.size))[0]


def _read_exactly(pipe, size: int) -> bytes:
    data = pipe.read(size)
    if data is None or len(data) < size:
        raise EOFError("the pipe closed")
    return data


def warm_up() -> float:
    """Draw two small throwaway pictures (a heatmap and a reliability diagram), so that what every
    first picture pays once (fonts found and loaded, glyphs and text layout cached, the PNG encoder:
    about 1 s of the 1.2 s a first heatmap took) is paid while the first epoch trains, not when
    its pictures are due. Returns the CPU seconds it took."""
    import numpy as np

    from monitor.calibration import bin_statistics, reliability
    from monitor.render.heatmap import confusion_heatmap
    from monitor.render.reliability import reliability_png

    start = time.process_time()
    try:
        confusion_heatmap(np.array([[5, 1], [2, 7]]), ["a", "b"], "warm-up")
        confidence = np.linspace(0.3, 1.0, 20)
        reliability_png(reliability(**bin_statistics(confidence, confidence > 0.6)), "warm-up")
    except Exception:  # noqa: BLE001 - a real picture failing the same way is reported then
        pass
    return time.process_time() - start


def serve(niceness: int, warm: bool = True, spares: dict[int, tuple[int, int]] | None = None) -> None:
    """The child's loop: read a request, draw, answer; exit when the pipe closes. `warm`: first
    `warm_up()`, while nobody waits (the child starts as training begins). Niced, not in Linux's
    SCHED_IDLE class: measured (`bench/background_cost.py`), neither hides work from training on
    cores it keeps busy, and a SCHED_IDLE child would starve behind any busy process while `fit`
    waits for its last pictures. `spares`: lane number -> (request fd, answer fd), the pipes of the
    forks `DrawingProcess.widen` may ask for."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the training process's to handle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks reaped as they end
    try:
        os.nice(niceness)
    except OSError:
        pass
    pipe_in, pipe_out = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not garble the answers
    # seaborn (the annotated heatmaps) imports scipy.stats and scipy.cluster at its start, for kernel
    # densities and clustering that this process never draws: 0.6 s of CPU, while the first epoch
    # trains. Without them seaborn uses its own fallbacks; the heatmaps are the same bytes.
    for unused in ("scipy.stats", "scipy.cluster"):
        sys.modules.setdefault(unused, None)
    import monitor.render  # noqa: F401  (matplotlib and the renderers, while the first epoch trains)

    # Pictures already asked for (the suite's rehearsal of the first epoch's) warm up what they use;
    # the warm-up's throwaway pictures would only delay them.
    warm_up_cpu = warm_up() if warm and not _request_waiting(pipe_in) else 0.0  # sent with the 1st answer
    gc.set_threshold(*GC_THRESHOLDS)
    _answer_requests({}, pipe_in, pipe_out, dict(spares or {}), warm_up_cpu)
    while True:  # the forks end as their pipes close: wait for them (SIGCHLD ignored: until none is left)
        try:
            os.wait()
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _answer_requests(kept: dict, pipe_in, pipe_out, spares: dict, warm_up_cpu: float = 0.0) -> None:
    """Read a request from `pipe_in`, draw (or fork), answer into `pipe_out`; return when the pipe
    closes. `kept`: the renderers, by key."""
    while True:
        try:
            request = _read_exactly(pipe_in, _read_size(pipe_in))
        except EOFError:
            return
        start = time.process_time()
        try:
            key, factory, fargs, fkwargs, method, args, kwargs = pickle.loads(request)
        except Exception as err:  # noqa: BLE001 - the training process draws it itself
            answer = ("unreadable", f"{type(err).__name__}: {err}")
        else:
            if factory is None and method == "fork":
                answer = _fork(args[0], kept, spares, (pipe_in, pipe_out))
            else:
                answer = _draw(kept, key, factory, fargs, fkwargs, method, args, kwargs)
        payload = pickle.dumps((*answer, time.process_time() - start, warm_up_cpu),
                               protocol=pickle.HIGHEST_PROTOCOL)
        warm_up_cpu = 0.0
        try:
            pipe_out.write(_HEADER.pack(len(payload)) + payload)
            pipe_out.flush()
        except OSError:
            return


def _fork(number: int, kept: dict, spares: dict, own: tuple) -> tuple:
    """Fork into a second drawing process that answers lane `number`'s pipes, with a copy of every
    renderer in `kept`; ("ok", its pid) here, ("error", why) when it cannot be made."""
    if number not in spares:
        return ("error", f"no pipes for lane {number}")
    request_fd, answer_fd = spares.pop(number)
    try:
        pid = os.fork()
    except OSError as err:
        return ("error", f"{type(err).__name__}: {err}")
    if pid:
        os.close(request_fd)
        os.close(answer_fd)
        return ("ok", pid)
    try:  # the fork: nothing of the other lanes kept open (their ends would hide a lane's end)
        for fds in spares.values():
            for fd in fds:
                os.close(fd)
        for pipe in own:
            pipe.close()
        _answer_requests(kept, os.fdopen(request_fd, "rb"), os.fdopen(answer_fd, "wb"), {})
    finally:
        sys.stderr.flush()
        os._exit(0)


def _request_waiting(pipe) -> bool:
    """Whether a request has arrived on `pipe` (nothing read from it yet)."""
    try:
        return bool(select.select([pipe], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _draw(kept: dict, key, factory, fargs, fkwargs, method, args, kwargs) -> tuple:
    """("ok", the drawing) or ("error", what went wrong), in the child."""
    try:
        if key is None:
            return ("ok", factory(*args, **kwargs))
        if key not in kept:
            kept[key] = factory(*fargs, **fkwargs)
        return ("ok", getattr(kept[key], method)(*args, **kwargs))
    except Exception as err:  # noqa: BLE001 - sent back, raised there
        return ("error", f"{type(err).__name__}: {err}")


def _parse_spares(text: str) -> dict[int, tuple[int, int]]:
    """"r:w,r:w" (the spare pipes' fds, as `DrawingProcess` passes them) -> {1: (r, w), 2: ...}."""
    pairs = [pair.split(":") for pair in text.split(",") if pair]
    return {number: (int(r), int(w)) for number, (r, w) in enumerate(pairs, start=1)}


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else DRAWING_NICENESS,
          warm=sys.argv[2:3] != ["cold"], spares=_parse_spares(sys.argv[3] if len(sys.argv) > 3 else ""))
    sys.stderr.flush()
    os._exit(0)  # nothing left to save: skip the interpreter's teardown (0.4 s with matplotlib loaded)
