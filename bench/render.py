"""Render and PNG-encode times of monitor.render at 10, 100 and 1,000 classes, old and new side by side.

For each class count C and each picture the suite draws per epoch (normalised and counts
heatmaps, the 18-image grid, 4 probability-bar rows, and above 30 classes the recall bars):

- old:    the pure function of `--baseline-rev` (default: the commit before the per-run renderers),
          loaded from git into this process; a fresh figure per call;
- first:  today's pure function, which builds a renderer per call (what epoch 1 costs);
- reused: one renderer held for the run, as the callbacks hold it, fed a new epoch each call.

Every call gets a new epoch: a freshly drawn confusion matrix and new probabilities (the
pessimistic case for the renderers' text cache: in training, consecutive epochs share more).
The three run interleaved (old, first, reused, old, ...), so drift on a shared machine hits
them alike. Above 30 classes the old functions take seconds per call, so they run
`--baseline-repeats-large` times. Markdown goes to stdout, progress to stderr. With
`--png-dir` (default /tmp/render_check) it also writes the pictures to look at: heatmaps, bars,
a grid with long class names and the recall bars, at each C.

    .venv/bin/python bench/render.py                      # 10 repeats, C = 10, 100, 1000 (~2 min)
    .venv/bin/python bench/render.py --repeats 3 --classes 10 --no-baseline   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor import render  # noqa: E402
from monitor.metrics import per_class  # noqa: E402

BASELINE_REV = "938c279"  # "bench: shared validation timer ...": the last commit before the renderers
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_LONG = ["airplane, aeroplane, plane", "automobile, motorcar", "bird (any of the class Aves)",
              "domestic cat, house cat", "deer, a ruminant", "dog, domestic dog", "frog, toad, anuran",
              "horse, Equus caballus", "ship, a large vessel", "truck, motortruck"]
ADJECTIVES = ["spotted", "greater", "common", "giant", "red-backed", "European", "mountain", "striped",
              "lesser", "American"]
NOUNS = ["salamander", "sea lion", "garden spider", "water ouzel", "tree frog", "box turtle",
         "night heron", "black grouse", "king penguin", "mud turtle"]
GRID, BARS = 18, 4


def class_names(c: int, long: bool = False) -> list[str]:
    """CIFAR's names at 10 classes; ImageNet-like long names above."""
    if c == 10:
        return CIFAR_LONG if long else CIFAR
    return [f"{ADJECTIVES[i % 10]} {NOUNS[i // 10 % 10]} (n{1440764 + 37 * i:08d})" for i in range(c)]


def confusion(c: int, rng: np.random.Generator, support: int) -> np.ndarray:
    """A plausible matrix: 70% right, groups of 3 classes confused with each other, a little noise."""
    rates = np.full((c, c), 0.1 / max(c - 1, 1))
    for start in range(0, c - 2, max(c // 8, 3)):
        group = np.arange(start, start + 3)
        rates[np.ix_(group, group)] += 0.1
    np.fill_diagonal(rates, 0.0)
    rates *= 0.3 / rates.sum(axis=1, keepdims=True)
    np.fill_diagonal(rates, 0.7)
    return np.stack([rng.multinomial(support, row) for row in rates])


def sample_images(data_dir: str | None) -> np.ndarray:
    """18 CIFAR-10 test images as [0, 1] floats when the data is there, else smooth synthetic ones."""
    for folder in (data_dir, os.environ.get("MONITOR_DATA_DIR"), str(ROOT.parent / "shared" / "data")):
        path = Path(folder or "") / "cifar10.npz"
        if folder and path.is_file():
            with np.load(path, allow_pickle=False) as data:
                return data["x_test"][:GRID].astype(np.float32) / 255.0
    y, x = np.mgrid[0:32, 0:32] / 31.0
    phase = np.linspace(0, 2 * np.pi, GRID)[:, None, None]
    return np.stack([0.5 + 0.5 * np.sin(6 * x + phase), y + 0 * phase, 0.5 + 0.5 * np.cos(5 * y * x + phase)],
                    axis=-1).astype(np.float32)


def load_baseline(rev: str):
    """`monitor/render.py` as of git revision `rev`, imported under another name (None if unavailable)."""
    try:
        source = subprocess.run(["git", "show", f"{rev}:monitor/render.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"no baseline ({rev}): {err}", file=sys.stderr)
        return None
    path = Path(tempfile.mkdtemp()) / "render_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("render_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Epochs:
    """Per-epoch inputs at C classes: a new matrix and new probabilities each epoch, same images."""

    def __init__(self, c: int, images: np.ndarray, seed: int = 0):
        self.c, self.images = c, images
        self.rng = np.random.default_rng(seed)
        self.names = class_names(c)
        self.support = 1500 if c == 10 else max(10, 10_000 // c)
        self.truth = np.arange(GRID) % c

    def draw(self, epoch: int) -> dict:
        cm = confusion(self.c, self.rng, self.support)
        logits = self.rng.normal(scale=2.0, size=(GRID, self.c))
        logits[np.arange(GRID), self.truth] += 2.0
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return {"cm": cm, "probs": probs, "recall": per_class(cm)["recall"], "epoch": epoch}


def pictures(c: int) -> list[str]:
    kinds = ["confusion heatmap (normalized)", "confusion heatmap (counts)", f"prediction grid ({GRID})",
             f"probability bars ({BARS})"]
    return kinds + (["per-class recall bars"] if c > render.ANNOTATE_MAX_CLASSES else [])


def pure(module, kind: str, names: list[str], images: np.ndarray, truth: np.ndarray,
         e: dict) -> Callable[[], bytes]:
    """The pure function call of `kind` (module: old or new monitor.render)."""
    title = f"Validation, epoch {e['epoch'] + 1}/31, accuracy 0.700"
    probs = e["probs"]
    if kind.startswith("confusion"):
        return lambda: module.confusion_heatmap(e["cm"], names, title, normalized="normalized" in kind)
    if kind.startswith("prediction"):
        return lambda: module.prediction_grid(images, truth, probs.argmax(1), probs.max(1), names, title)
    if kind.startswith("probability"):
        return lambda: module.probability_bars(images[:BARS], truth[:BARS], probs[:BARS], names, title)
    if not hasattr(module, "per_class_recall_bars"):
        return None
    return lambda: module.per_class_recall_bars(e["recall"], names, title)


def renderer_for(kind: str, names: list[str]):
    if kind.startswith("confusion"):
        return render.ConfusionHeatmapRenderer(names, normalized="normalized" in kind)
    if kind.startswith("prediction"):
        return render.PredictionGridRenderer(names)
    if kind.startswith("probability"):
        return render.ProbabilityBarsRenderer(names)
    return None  # recall bars: a pure function, drawn whole


def reused(r, kind: str, images: np.ndarray, truth: np.ndarray, e: dict) -> Callable[[], bytes]:
    title = f"Validation, epoch {e['epoch'] + 1}/31, accuracy 0.700"
    probs = e["probs"]
    if kind.startswith("confusion"):
        return lambda: r.render(e["cm"], title)
    if kind.startswith("prediction"):
        return lambda: r.render(images, truth, probs.argmax(1), probs.max(1), title)
    return lambda: r.render(images[:BARS], truth[:BARS], probs[:BARS], title)


def timed(call: Callable[[], bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    png = call()
    return 1000.0 * (time.perf_counter() - start), len(png)


def measure(c: int, images: np.ndarray, repeats: int, baseline, baseline_repeats: int) -> dict:
    """{kind: {"old": [ms], "first": [ms], "reused": [ms], "bytes": {...}}} at C classes."""
    epochs = Epochs(c, images, seed=c)
    names = epochs.names
    out = {}
    for kind in pictures(c):
        r = renderer_for(kind, names)
        row = {"old": [], "first": [], "reused": [], "bytes": {}}
        warm = epochs.draw(0)  # imports and font caches, outside the timings
        pure(render, kind, names, images, epochs.truth, warm)()
        if r is not None:
            reused(r, kind, images, epochs.truth, warm)()  # the run's first epoch builds the figure
        for i in range(repeats):
            e = epochs.draw(i + 1)
            old = pure(baseline, kind, names, images, epochs.truth, e) if baseline else None
            if old is not None and i < baseline_repeats:
                ms, size = timed(old)
                row["old"].append(ms)
                row["bytes"]["old"] = size
            ms, size = timed(pure(render, kind, names, images, epochs.truth, e))
            row["first"].append(ms)
            row["bytes"]["new"] = size
            if r is not None:
                row["reused"].append(timed(reused(r, kind, images, epochs.truth, e))[0])
        out[kind] = row
        print(f"  C={c} {kind}: done", file=sys.stderr)
    return out


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def markdown(results: dict, repeats: int) -> str:
    lines = [
        "| classes | picture | old ms: median (min–max) | new, first call ms | new, renderer reused ms "
        "| PNG KB old / new |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c, rows in results.items():
        totals = {"old": 0.0, "first": 0.0, "reused": 0.0}
        complete = {"old": True}
        any_old = any(row["old"] for row in rows.values())
        for kind, row in rows.items():
            steady = row["reused"] or row["first"]  # recall bars: no renderer, every call is a first call
            totals["first"] += statistics.median(row["first"])
            totals["reused"] += statistics.median(steady)
            if row["old"]:
                totals["old"] += statistics.median(row["old"])
            else:
                complete["old"] = False
            sizes = row["bytes"]
            old_kb = f"{sizes['old'] / 1024:.0f}" if "old" in sizes else "-"
            reuse = stats(row["reused"]) if row["reused"] else f"{stats(row['first'])} (no renderer)"
            lines.append(f"| {c} | {kind} | {stats(row['old'])} | {stats(row['first'])} | {reuse} "
                         f"| {old_kb} / {sizes['new'] / 1024:.0f} |")
        old_total = ("-" if not any_old else f"**{totals['old']:.0f}**" if complete["old"]
                     else f"{totals['old']:.0f} (no recall bars then)")
        lines.append(f"| {c} | **all per epoch** (sum of medians) | {old_total} | **{totals['first']:.0f}** "
                     f"| **{totals['reused']:.0f}** | |")
    lines.append("")
    lines.append(f"{repeats} repeats per cell (old above {render.ANNOTATE_MAX_CLASSES} classes: "
                 "--baseline-repeats-large); every call a new epoch (new matrix, new probabilities); "
                 "'first call' is today's pure function, a fresh renderer per call, as epoch 1 costs.")
    return "\n".join(lines)


def write_pngs(folder: Path, images: np.ndarray, classes: list[int]) -> None:
    """The pictures to look at, one set per class count."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in classes:
        epochs = Epochs(c, images, seed=c)
        e = epochs.draw(4)
        names, truth, probs = epochs.names, epochs.truth, e["probs"]
        title = f"Validation, epoch 5/31, accuracy {np.trace(e['cm']) / e['cm'].sum():.3f}"
        files = {
            "heatmap_normalized": render.confusion_heatmap(e["cm"], names, f"{title} (normalized)"),
            "heatmap_counts": render.confusion_heatmap(e["cm"], names, f"{title} (counts)", normalized=False),
            "bars": render.probability_bars(images[:BARS], truth[:BARS], probs[:BARS], names,
                                            f"Class probabilities, epoch 5/31 ({c} classes)"),
            "grid_long_names": render.prediction_grid(images, truth, probs.argmax(1), probs.max(1),
                                                      class_names(c, long=True),
                                                      f"Validation predictions, epoch 5/31 ({c} classes)"),
            "recall": render.per_class_recall_bars(e["recall"], names, "Per-class recall, epoch 5/31"),
        }
        for name, png in files.items():
            path = folder / f"{c:04d}_{name}.png"
            path.write_bytes(png)
            width, height = render.png_size(png)
            print(f"{path}: {width}x{height}, {len(png) / 1024:.0f} KB", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per picture and way")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the old render.py")
    parser.add_argument("--no-baseline", action="store_true", help="skip the old functions")
    parser.add_argument("--baseline-repeats-large", type=int, default=1,
                        help=f"old calls above {render.ANNOTATE_MAX_CLASSES} classes (they take seconds)")
    parser.add_argument("--data-dir", help="folder with cifar10.npz for the sample images")
    parser.add_argument("--png-dir", default="/tmp/render_check", help="where the pictures go ('' = none)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    images = sample_images(args.data_dir)
    baseline = None if args.no_baseline else load_baseline(args.baseline_rev)
    results = {}
    for c in args.classes:
        large = c > render.ANNOTATE_MAX_CLASSES
        results[c] = measure(c, images, args.repeats, baseline,
                             min(args.repeats, args.baseline_repeats_large) if large else args.repeats)
    print(markdown(results, args.repeats))
    if args.png_dir:
        write_pngs(Path(args.png_dir), images, args.classes)


if __name__ == "__main__":
    main()
