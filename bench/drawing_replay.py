"""The drawing process's CPU per picture, this code against an earlier commit, on the same requests.

A short fit (the `simple` recipe's layer stack, C classes, random 32x32x3 images, every epoch's
pictures drawn: `picture_budget=0`) records every request the suite sends its drawing process
(the pickled renderer, method and arrays). The requests are then replayed, each replay in a fresh
process as the drawing process runs them (after `monitor.drawing.warm_up`), by this working tree
and by `--baseline-rev` (checked out into a temporary directory with `git worktree`), interleaved
(baseline, current, baseline, ...). Printed per picture kind: the CPU seconds of its first picture
(the layout built from nothing: the first epoch) and of a later epoch's, medians over the repeats;
and, with `--check-pixels`, the picture kinds whose replayed pictures do not decode to the same
pixels in both.
No training is timed: the figures are the drawing's own CPU, which the machine's noise touches
far less than the wall time of a fit.

    .venv/bin/python bench/drawing_replay.py --classes 10 1000 --baseline-rev 98acd73 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import baseline_tree  # noqa: E402  (needs ROOT on sys.path; no Keras)

_HEADER = struct.Struct("<Q")


def record(num_classes: int, epochs: int, out: Path) -> int:
    """Fit with the suite, every epoch drawn, and write each drawing request to `out`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    from bench.timing import random_classifier
    from callbacks import close_suite, monitoring_callbacks
    from monitor import drawing

    x, y, model = random_classifier("simple", num_classes, 8000)
    requests = []
    ask = drawing.DrawingProcess._ask

    def recording_ask(self, lane, payload, name, *args, **kwargs):
        if name != "fork":  # `widen`'s requests to the child to fork: no picture
            requests.append(payload)
        return ask(self, lane, payload, name, *args, **kwargs)

    drawing.DrawingProcess._ask = recording_ask
    with tempfile.TemporaryDirectory() as run_dir:
        names = [f"class_{i:04d}" for i in range(num_classes)]
        suite = monitoring_callbacks(names, run_dir, picture_budget=0)
        model.fit(x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), batch_size=32, epochs=epochs,
                  verbose=0, callbacks=suite)
        close_suite(suite)
    with open(out, "wb") as f:
        for payload in requests:
            f.write(_HEADER.pack(len(payload)) + payload)
    return len(requests)


def replay(root: str, recording: str, pixels_out: str | None) -> dict:
    """In this process, with `root`'s code: warm up as the drawing process does, then draw every
    recorded request; CPU seconds per (picture kind, nth call of its renderer)."""
    sys.path.insert(0, root)
    for unused in ("scipy.stats", "scipy.cluster"):  # as the drawing process
        sys.modules.setdefault(unused, None)
    import gc

    import monitor.render  # noqa: F401
    from monitor import drawing
    from monitor.drawing import _draw, _name, warm_up

    data = Path(recording).read_bytes()
    payloads, at = [], 0
    while at < len(data):
        (size,) = _HEADER.unpack_from(data, at)
        payloads.append(data[at + _HEADER.size:at + _HEADER.size + size])
        at += _HEADER.size + size
    warm_up()
    if hasattr(drawing, "GC_THRESHOLDS"):  # as the drawing process sets them
        gc.set_threshold(*drawing.GC_THRESHOLDS)
    kept, calls, cpu, pictures = {}, {}, {}, []
    for payload in payloads:
        key, factory, fargs, fkwargs, method, args, kwargs = pickle.loads(payload)
        name = _name(factory)
        nth = calls.get((key, name), 0)
        calls[(key, name)] = nth + 1
        start = time.thread_time()
        status, value = _draw(kept, key, factory, fargs, fkwargs, method, args, kwargs)
        cpu.setdefault(name, []).append((nth, time.thread_time() - start))
        if status != "ok":
            raise RuntimeError(f"{name}: {value}")
        if isinstance(value, bytes):
            pictures.append((name, value))
    if pixels_out:
        import numpy as np
        from PIL import Image

        arrays = {f"{i:03d}_{name}": np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
                  for i, (name, png) in enumerate(pictures)}
        np.savez_compressed(pixels_out, **arrays)
    return cpu


def per_kind(cpu: dict) -> dict:
    """{kind: (first picture's CPU s, a later epoch's CPU s)} (a kind may have several renderers:
    their first calls sum to the first epoch's, the rest averaged per epoch)."""
    out = {}
    for name, calls in cpu.items():
        first = sum(s for n, s in calls if n == 0)
        later = [s for n, s in calls if n > 0]
        epochs_later = max((n for n, _ in calls), default=0)
        out[name] = (first, sum(later) / epochs_later if epochs_later else 0.0)
    return out


def run_replay(root: str, recording: Path, pixels_out: str | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, __file__, "--replay", root, str(recording), out.name]
        if pixels_out:
            cmd.append(pixels_out)
        subprocess.run(cmd, check=True, env=dict(os.environ, MPLBACKEND="Agg"))
        return json.loads(Path(out.name).read_text())


def different_pixels(a: str, b: str) -> list[str]:
    """The picture kinds some of whose pictures differ, pixel for pixel, between the two replays."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        if x.files != y.files:
            return ["(not the same pictures)"]
        return sorted({k.split("_", 1)[1] for k in x.files if not np.array_equal(x[k], y[k])})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, nargs="+", default=[10, 1000])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-rev", default="98acd73", help="the commit compared against (default: the "
                   "last commit of the previous stop)")
    p.add_argument("--check-pixels", action="store_true", help="also check that both draw the same pixels")
    p.add_argument("--out", help="write the figures as JSON here (and the table beside it as .md)")
    p.add_argument("--replay", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.replay:
        root, recording, out, *pixels = args.replay
        Path(out).write_text(json.dumps(replay(root, recording, pixels[0] if pixels else None)))
        return
    work = Path(tempfile.mkdtemp(prefix="drawing-replay-"))
    rows = []
    with baseline_tree(args.baseline_rev) as baseline:
        for c in args.classes:
            recording = work / f"requests_{c}.bin"
            print(f"C={c}: recording {record_in_worker(c, args.epochs, recording)} requests", file=sys.stderr)
            runs = {"baseline": [], "current": []}
            for r in range(args.repeats):
                for way, root in (("baseline", baseline), ("current", ROOT)):
                    pixels = str(work / f"{way}_{c}.npz") if args.check_pixels and r == 0 else None
                    runs[way].append(per_kind(run_replay(str(root), recording, pixels)))
                    print(f"C={c} repeat {r + 1} {way} done", file=sys.stderr)
            same = (different_pixels(str(work / f"baseline_{c}.npz"), str(work / f"current_{c}.npz"))
                    if args.check_pixels else None)
            rows.extend(_rows(c, runs, same))
    table = markdown(rows, args.baseline_rev)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
        Path(args.out).with_suffix(".md").write_text(table + "\n")


def record_in_worker(c: int, epochs: int, recording: Path) -> int:
    """`record` in a process of its own (TensorFlow stays out of this one)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.drawing_replay import record; "
            f"print(record({c}, {epochs}, __import__('pathlib').Path({str(recording)!r})))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


def _rows(c: int, runs: dict, same: list[str] | None) -> list[dict]:
    kinds = sorted(runs["current"][0], key=lambda k: -runs["current"][0][k][1])
    rows = []
    for kind in [*kinds, "all"]:
        def median(way, index, kind=kind):
            values = [sum(v[index] for v in run.values()) if kind == "all"
                      else run.get(kind, (0.0, 0.0))[index] for run in runs[way]]
            return statistics.median(values)
        rows.append({"classes": c, "picture": kind, "first_baseline_ms": 1000 * median("baseline", 0),
                     "first_ms": 1000 * median("current", 0),
                     "later_baseline_ms": 1000 * median("baseline", 1),
                     "later_ms": 1000 * median("current", 1), "same_pixels": same})
    return rows


def markdown(rows: list[dict], rev: str) -> str:
    lines = [f"| classes | picture | first epoch: {rev} ms | now ms | now / {rev} | later epoch: {rev} ms "
             f"| now ms | now / {rev} |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        bold = "**" if r["picture"] == "all" else ""
        lines.append(
            f"| {r['classes']} | {bold}{r['picture']}{bold} | {r['first_baseline_ms']:.0f} "
            f"| {r['first_ms']:.0f} "
            f"| {r['first_ms'] / max(r['first_baseline_ms'], 1e-9):.2f} | {r['later_baseline_ms']:.0f} "
            f"| {r['later_ms']:.0f} | {r['later_ms'] / max(r['later_baseline_ms'], 1e-9):.2f} |")
    same = {r["classes"]: r["same_pixels"] for r in rows if r["same_pixels"] is not None}
    if same:
        lines.append("")
        lines.append("Replayed pictures whose pixels differ from the baseline's: " + "; ".join(
            f"{c} classes: {', '.join(s) if s else 'none'}" for c, s in same.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
