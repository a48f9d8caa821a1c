"""How long a thread waits for the GIL, measured from outside the process.

A thread waiting for CPython's GIL (3.11) sleeps in a `futex` call on one of the GIL's own
condition variables or mutexes, which live in the runtime's `_gil_runtime_state`. The process
being measured finds where that structure is (`gil_state_address`: it holds the GIL while it looks,
so the structure is the one whose `last_holder` is its own thread state), and a separate sampler
process reads `/proc/<pid>/task/<tid>/syscall` of the thread about every millisecond: the share
of samples in which the thread sleeps in `futex` on an address inside that structure, times the
time sampled, is the time it waited for the GIL. The sampler holds no GIL of the measured process
and takes a few percent of one core; run it for every way compared so that they pay alike.

The runtime also counts GIL hand-overs (`switch_number`); `switches()` reads it in-process.

```python
with GilWaitSampler() as sampler:   # in the process whose calling thread is measured
    model.fit(...)
print(sampler.wait_s, sampler.switches)
```

Linux and CPython 3.11-3.12 only (elsewhere `wait_s` is None, said in `why`).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time

FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
# _gil_runtime_state (3.11, 3.12): interval, last_holder, locked (int, padded), switch_number,
# then cond, mutex, switch_cond, switch_mutex: a waiter sleeps on one of these four.
_SWITCH_NUMBER_OFFSET = 24
_WAIT_OFFSET, _WAIT_SIZE = 32, 48 + 40 + 48 + 40
PR_SET_PTRACER, PR_SET_PTRACER_ANY = 0x59616D61, ctypes.c_ulong(-1).value


def gil_state_address() -> int | None:
    """The address of this interpreter's `_gil_runtime_state`, or None where it cannot be found."""
    if sys.version_info[:2] not in ((3, 11), (3, 12)) or not sys.platform.startswith("linux"):
        return None
    try:
        base = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
    except (ValueError, AttributeError):
        return None
    ctypes.pythonapi.PyThreadState_Get.restype = ctypes.c_void_p
    me = ctypes.pythonapi.PyThreadState_Get()
    interval = int(round(sys.getswitchinterval() * 1e6))
    for offset in range(0, 1 << 16, 8):  # we hold the GIL: interval, last_holder = us, locked = 1
        at = base + offset
        if (ctypes.c_uint64.from_address(at).value == interval
                and ctypes.c_uint64.from_address(at + 8).value == me
                and ctypes.c_int32.from_address(at + 16).value == 1):
            return at
    return None


def wait_range(state: int) -> tuple[int, int]:
    """The addresses [lo, hi) a thread waiting for the GIL sleeps on, in the `_gil_runtime_state`
    at `state`."""
    lo = state + _WAIT_OFFSET
    return lo, lo + _WAIT_SIZE


def allow_sampling() -> None:
    """Let a process that is not our ancestor (the sampler, our child) read our threads' state
    (Yama's ptrace_scope 1)."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PTRACER, ctypes.c_ulong(PR_SET_PTRACER_ANY), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def waits_on_gil(syscall: bytes, lo: int, hi: int) -> bool:
    """Whether a thread whose `/proc/<pid>/task/<tid>/syscall` reads `syscall` sleeps in futex on
    an address in [lo, hi): waits for the GIL."""
    fields = syscall.split(maxsplit=2)
    return bool(fields) and fields[0] == str(FUTEX).encode() and lo <= int(fields[1], 16) < hi


def switches(state: int | None) -> int | None:
    """The interpreter's count of GIL hand-overs so far."""
    return None if state is None else ctypes.c_uint64.from_address(state + _SWITCH_NUMBER_OFFSET).value


class GilWaitSampler:
    """Samples the calling thread's GIL waits from a sampler process while the block runs; see
    the module docstring. `wait_s`, `samples`, `switches` are set on exit."""

    def __init__(self, period_s: float = 0.001):
        self.period_s = period_s
        self.wait_s: float | None = None
        self.samples = 0
        self.switches: int | None = None
        self.why: str | None = None

    def __enter__(self) -> GilWaitSampler:
        self._state = gil_state_address()
        self._proc = None
        if self._state is None or FUTEX is None:
            self.why = "the GIL's state was not found (Linux, CPython 3.11-3.12 only)"
            return self
        allow_sampling()
        lo, hi = wait_range(self._state)
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(os.getpid()), str(threading.get_native_id()), str(lo),
             str(hi), str(self.period_s)], stdout=subprocess.PIPE, text=True)
        self._proc.stdout.readline()  # "ready": sampling has begun
        self._switches = switches(self._state)
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        self.switches = switches(self._state) - self._switches
        self._proc.send_signal(signal.SIGTERM)
        out = json.loads(self._proc.stdout.readline() or "{}")
        self._proc.wait()
        self.samples = out.get("samples", 0)
        if out.get("error") or not self.samples:
            self.why = out.get("error", "no samples")
            return
        self.wait_s = out["gil_samples"] / self.samples * out["elapsed_s"]


def sample(pid: int, tid: int, lo: int, hi: int, period_s: float) -> None:
    """The sampler process: count samples of `tid` sleeping in futex on [lo, hi) until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    counts = {"samples": 0, "gil_samples": 0}
    try:
        fd = os.open(f"/proc/{pid}/task/{tid}/syscall", os.O_RDONLY)
    except OSError as err:
        print(json.dumps({"error": f"cannot read the thread's state: {err}"}), flush=True)
        return
    print("ready", flush=True)
    start = time.perf_counter()
    while not stop.is_set():
        try:
            syscall = os.pread(fd, 128, 0)
        except OSError as err:
            counts["error"] = str(err)
            break
        counts["samples"] += 1
        if waits_on_gil(syscall, lo, hi):
            counts["gil_samples"] += 1
        time.sleep(period_s)
    counts["elapsed_s"] = time.perf_counter() - start
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    sample(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
