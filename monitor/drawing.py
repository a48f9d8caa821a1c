"""Drawing in a child process of lower priority: the suite's pictures never hold the training
process's GIL, and compete for its cores at a lower priority (not for free: on cores that training
keeps busy, `bench/background_cost.py` measures what work beside it costs).

`DrawingProcess` starts `python -m monitor.drawing` (not `multiprocessing`, whose start methods
import the user's own `__main__` again in the child), niced by `DRAWING_NICENESS`, and speaks to
it over a pipe: length-prefixed pickles of small arrays out, PNG bytes back, one request at a
time (the suite's one writer thread asks, and waits without the GIL while the child draws).
The child keeps each renderer (`monitor.render`'s classes, which redraw only what changed between
epochs) for the run, under the key of its proxy.

```python
drawing = DrawingProcess()
heatmap = drawing.renderer(ConfusionHeatmapRenderer, names, normalized=True)
png = heatmap.render(cm, "epoch 3")             # drawn in the child
png = drawing.function(reliability_png)(stats, "epoch 3")
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
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
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
        try:
            mode = "warm" if self.warm_up else "cold"
            self._process = subprocess.Popen(
                [sys.executable, "-m", "monitor.drawing", str(self.niceness), mode], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=env, close_fds=True)
        except OSError as err:
            self._give_up(f"cannot start the drawing process ({err})")
            return False
        self._ending = weakref.finalize(self, _end, self._process)  # at the latest at interpreter exit
        return True

    def call(self, key, factory, fargs, fkwargs, method, args, kwargs):
        """Draw: `factory(*fargs, **fkwargs)` kept under `key` (or, key None, `factory` itself
        called), its `method` called with `args`/`kwargs`. In the child when it runs."""
        with self._lock:
            if (key if key is not None else factory) not in self._here and self._start():
                try:  # what cannot be pickled (a user's lambda as display transform) is drawn here
                    payload = pickle.dumps((key, factory, fargs, fkwargs, method, args, kwargs),
                                           protocol=pickle.HIGHEST_PROTOCOL)
                except (pickle.PickleError, AttributeError, TypeError):
                    payload = None
                if payload is not None:
                    try:
                        return self._ask(payload, _name(factory))
                    except _Unreadable:
                        self._here.add(key if key is not None else factory)
                    except (OSError, EOFError, pickle.UnpicklingError) as err:
                        self._give_up(f"the drawing process failed ({type(err).__name__}: {err})")
            return self._draw_here(key, factory, fargs, fkwargs, method, args, kwargs)

    def _ask(self, payload: bytes, name: str):
        pipe_in, pipe_out = self._process.stdin, self._process.stdout
        pipe_in.write(_HEADER.pack(len(payload)) + payload)
        pipe_in.flush()
        status, value, cpu, warm_up_cpu = pickle.loads(_read_exactly(pipe_out, _read_size(pipe_out)))
        self._count(name, cpu, warm_up_cpu)
        self.requests += 1
        if status == "unreadable":
            raise _Unreadable(value)
        if status != "ok":
            raise DrawingFailed(value)
        return value

    def _count(self, name: str, cpu: float, warm_up_cpu: float = 0.0) -> None:
        self.cpu_seconds += cpu + warm_up_cpu
        self.picture_cpu_seconds += cpu
        self.cpu_by_picture[name] = self.cpu_by_picture.get(name, 0.0) + cpu + warm_up_cpu

    def _draw_here(self, key, factory, fargs, fkwargs, method, args, kwargs):
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
            self._ending()

    def close(self) -> None:
        """End the child (it exits when its pipe closes); drawing later starts a new one."""
        with self._lock:
            self._stop()
            self._local.clear()


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


def _end(process: subprocess.Popen) -> None:
    """Close the child's pipe (it exits on reading the end) and reap it."""
    for pipe in (process.stdin, process.stdout):
        try:
            pipe.close()
        except OSError:
            pass
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


def serve(niceness: int, warm: bool = True) -> None:
    """The child's loop: read a request, draw, answer; exit when the pipe closes. `warm`: first
    `warm_up()`, while nobody waits (the child starts as training begins). Niced, not in Linux's
    SCHED_IDLE class: measured (`bench/background_cost.py`), neither hides work from training on
    cores it keeps busy, and a SCHED_IDLE child would starve behind any busy process while `fit`
    waits for its last pictures."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the training process's to handle
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
    kept: dict[int, object] = {}
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
            answer = _draw(kept, key, factory, fargs, fkwargs, method, args, kwargs)
        payload = pickle.dumps((*answer, time.process_time() - start, warm_up_cpu),
                               protocol=pickle.HIGHEST_PROTOCOL)
        warm_up_cpu = 0.0
        try:
            pipe_out.write(_HEADER.pack(len(payload)) + payload)
            pipe_out.flush()
        except OSError:
            return


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


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else DRAWING_NICENESS,
          warm=sys.argv[2:3] != ["cold"])
    sys.stderr.flush()
    os._exit(0)  # nothing left to save: skip the interpreter's teardown (0.4 s with matplotlib loaded)
