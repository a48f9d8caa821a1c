"""Many viewers on one dashboard: requests per second, latency and the server's memory under load.

    python bench/dashboard_load.py                          # 20 clients, 1,000 classes x 150 epochs
    python bench/dashboard_load.py --clients 4 --epochs 20 --seconds 20    # a quick check

Writes a synthetic 1,000-class x 150-epoch log (tests/synthetic_logs.py: confusion counts and 8
confident mistakes with thumbnails per epoch), starts the real `tensorboard` on 127.0.0.1 (its
default Rust data server, or `--load-fast false` for the Python loader), and runs `--clients`
clients at once, each one a page whose user steps the slider through the epochs with a cell
selected. Each client makes the requests the page makes: `runs` and the whole run's `matrices`
once; then per step `mistakes?step=` and one `mistake_image` thumbnail, after `--think-ms` (a
person moving the slider; 0: as fast as the answers come); and `runs` again every 3 s (the page's
check for new epochs), asking gzipped answers as browsers do (`--no-gzip`: as plain urllib). The
viewers come `--settle-s` after the server lists the run's last epoch (default 3 s, one page poll:
the server has been following the run); `--settle-s 0` is the cold case, 20 pages opened the
instant the last epoch is listed, before the server's background build of the whole-run answer
is done. Nothing leaves the machine (loopback only); it stops after `--steps` steps per client or
`--seconds`, whichever comes first.

Reports requests per second, p50/p95/p99 latency per route and overall, errors, and the
server's resident memory (the tensorboard process and its children: the Rust data server) before
the load, at its middle, at its end and at its peak: no per-request growth means the middle and
the end agree. Targets (issue 21): p95 <= 200 ms, memory bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PLUGIN = "/data/plugin/training_monitor"
RUN = "k1000/monitor"
POLL_S = 3.0  # the page's check for new epochs (static/live.js POLL_MS)
P95_TARGET_MS = 200.0


def write_log(folder: Path, classes: int, epochs: int, mistakes: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tests.synthetic_logs import write_run

    write_run(folder / RUN, classes=classes, epochs=epochs, per_class=10, mistakes=mistakes)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and every process below it, MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


def start_tensorboard(logdir: Path, log_path: Path, load_fast: str, epochs: int):
    """(process, base URL) of a tensorboard serving `logdir`, once it serves every epoch of RUN."""
    from tests.tb_server import free_port, get_json

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(port), "--load_fast", load_fast], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tensorboard exited: {log_path.read_text()[-3000:]}")
        try:
            runs = {r["run"]: r for r in get_json(base, f"{PLUGIN}/runs")["runs"]}
            if runs.get(RUN, {}).get("last_step") == epochs - 1:
                return process, base
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("tensorboard did not serve the whole log within 600 s")


class Client(threading.Thread):
    """One page: the run list and the whole run once, then the slider stepped with a cell selected."""

    def __init__(self, base: str, number: int, steps: int, epochs: int, think_s: float, stop_at: float,
                 record, gzip: bool = True):
        super().__init__(daemon=True)
        self.headers = {"Accept-Encoding": "gzip"} if gzip else {}
        self.base, self.steps, self.epochs, self.think_s = base, steps, epochs, think_s
        self.stop_at, self.record = stop_at, record
        self.rng = random.Random(number)

    def get(self, route: str, **params) -> bytes | None:
        url = f"{self.base}{PLUGIN}/{route}?{urllib.parse.urlencode(params)}"
        start = time.perf_counter()
        try:
            request = urllib.request.Request(url, headers=self.headers)
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read()
            ok = True
        except (urllib.error.URLError, OSError):
            body, ok = None, False
        self.record(route, 1000 * (time.perf_counter() - start), ok, time.monotonic())
        return body

    def run(self) -> None:
        self.get("runs")
        self.get("matrices", run=RUN, split="validation")
        step, last_poll = self.rng.randrange(self.epochs), time.monotonic()
        for _ in range(self.steps):
            if time.monotonic() >= self.stop_at:
                return
            step = (step + self.rng.choice((1, 1, 1, -1, 5))) % self.epochs  # mostly forward, some jumps
            if self.get("mistakes", run=RUN, split="validation", step=step) is not None:
                self.get("mistake_image", run=RUN, split="validation", step=step, index=self.rng.randrange(2))
            if time.monotonic() - last_poll >= POLL_S:
                self.get("runs")
                last_poll = time.monotonic()
            if self.think_s:
                time.sleep(self.think_s)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def load(base: str, pid: int, args) -> dict:
    """Run the clients; the latencies per route and the memory samples."""
    samples: list[tuple[str, float, bool, float]] = []
    lock = threading.Lock()

    def record(route, ms, ok, at):
        with lock:
            samples.append((route, ms, ok, at))

    memory = {"before_mb": tree_rss_mb(pid)}
    start = time.monotonic()
    stop_at = start + args.seconds
    clients = [Client(base, i, args.steps, args.epochs, args.think_ms / 1000, stop_at, record, args.gzip)
               for i in range(args.clients)]
    for client in clients:
        client.start()
    peak, middle = memory["before_mb"], None
    while any(c.is_alive() for c in clients):
        time.sleep(0.5)
        rss = tree_rss_mb(pid)
        peak = max(peak, rss)
        if middle is None and time.monotonic() - start >= min(args.seconds, _expected_s(args)) / 2:
            middle = rss
    elapsed = time.monotonic() - start
    memory.update(middle_mb=middle, end_mb=tree_rss_mb(pid), peak_mb=peak)
    return {"elapsed_s": elapsed, "samples": samples, "memory": memory}


def _expected_s(args) -> float:
    """About how long the clients take when nothing limits them but their think time."""
    return max(5.0, args.steps * (args.think_ms / 1000 + 0.05))


def summarise(result: dict, args) -> tuple[dict, str]:
    samples, elapsed, memory = result["samples"], result["elapsed_s"], result["memory"]
    routes = sorted({s[0] for s in samples})
    rows, figures = [], {"clients": args.clients, "classes": args.classes, "epochs": args.epochs,
                         "think_ms": args.think_ms, "load_fast": args.load_fast, "gzip": args.gzip,
                         "settle_s": args.settle_s,
                         "elapsed_s": round(elapsed, 1),
                         "memory": {k: round(v, 1) if v is not None else None for k, v in memory.items()}}
    for route in [*routes, "all"]:
        ms = [s[1] for s in samples if route in ("all", s[0]) and s[2]]
        errors = sum(1 for s in samples if route in ("all", s[0]) and not s[2])
        if not ms:
            continue
        figures[route] = {"requests": len(ms), "errors": errors, "rps": round(len(ms) / elapsed, 1),
                          "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
                          "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1)}
        f = figures[route]
        rows.append(f"| {route} | {f['requests']} | {f['errors']} | {f['rps']} | {f['p50_ms']} "
                    f"| {f['p95_ms']} | {f['p99_ms']} | {f['max_ms']} |")
    m = figures["memory"]
    steady = [s[1] for s in samples if s[0] != "matrices" and s[2]]
    figures["p95_without_matrices_ms"] = round(percentile(steady, 95), 1) if steady else None
    table = "\n".join([
        f"{args.clients} clients, {args.classes} classes x {args.epochs} epochs, think {args.think_ms} ms, "
        f"--load_fast={args.load_fast}, {'gzip' if args.gzip else 'no gzip'} asked, "
        f"viewers {args.settle_s:g} s after the last epoch was listed, {elapsed:.1f} s",
        "", "| route | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        f"server memory (tensorboard + children), MB: before {m['before_mb']}, middle {m['middle_mb']}, "
        f"end {m['end_mb']}, peak {m['peak_mb']}",
        f"p95 of the per-step requests (all but the one whole-run `matrices` per client): "
        f"{figures['p95_without_matrices_ms']} ms (target {P95_TARGET_MS:g} ms)"])
    return figures, table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--mistakes", type=int, default=8, help="mistakes (with thumbnails) per epoch")
    p.add_argument("--steps", type=int, default=150, help="slider steps per client")
    p.add_argument("--think-ms", type=float, default=100.0, help="pause between steps (0: none)")
    p.add_argument("--seconds", type=float, default=120.0, help="stop the load after this long")
    p.add_argument("--load-fast", choices=("true", "false"), default="true")
    p.add_argument("--settle-s", type=float, default=POLL_S,
                   help="wait after the server lists the run's last epoch, before the viewers come (0: they "
                        "come that instant, before the server's background build of the whole run is done)")
    p.add_argument("--gzip", action=argparse.BooleanOptionalAction, default=True,
                   help="ask for gzipped answers, as browsers do (--no-gzip: as urllib does)")
    p.add_argument("--logdir", type=Path,
                   help="where the log is (written first when it has none; default: a temporary folder)")
    p.add_argument("--out", type=Path, help="the figures as JSON (and the table beside it as .md)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir or Path(tmp) / "logs"
        if not (logdir / RUN).exists():
            started = time.perf_counter()
            write_log(logdir, args.classes, args.epochs, args.mistakes)
            print(f"wrote the synthetic log in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        process, base = start_tensorboard(logdir, Path(tmp) / "tb.log", args.load_fast, args.epochs)
        time.sleep(args.settle_s)
        try:
            result = load(base, process.pid, args)
        finally:
            process.terminate()
            process.wait(timeout=30)
    figures, table = summarise(result, args)
    print(table)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
        args.out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
