"""How fast the Training monitor dashboard shows a matrix and follows the slider, in headless chromium.

Starts the real `tensorboard` on a log directory and, for a run:

- first show: opening the dashboard page (TensorBoard's plugin iframe document,
  /data/plugin_entry.html) until the first matrix is drawn, from the page's own
  `performance.now()` (navigation start to drawn), median of `--opens` fresh loads;
  and opening TensorBoard itself at /#training_monitor until the matrix is drawn in
  its iframe (wall time from the navigation, the whole TensorBoard app included);
- slider: `--moves` slider moves (each to a random other epoch), the redraw time the
  page measures around its drawing, median and max; for the matrix, diff and recall views,
  side by side, and above 60 classes with every class drawn (matrix and diff).

With `--synthetic` it also measures a synthetic 1,000-class x 30-epoch log (tests/synthetic_logs.py).
With `--screenshots DIR` it saves one PNG per view to look at.

    .venv/bin/python bench/dashboard.py --logdir logs/cifar31 --run baseline/monitor \
        --compare dropout/monitor --synthetic --screenshots /tmp/dashboard_shots
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser import chromium, module_handle  # noqa: E402
from tests.tb_server import get_json, tensorboard  # noqa: E402

PLUGIN = "/data/plugin/training_monitor"
MODULE = f"{PLUGIN}/static/index.js"  # the page imports it from here; its `handles` are the bench's


def handle(driver, base: str, name: str, *args, timeout: float = 30.0):
    """The page's dashboard handle `name` (index.js `handles`), through the module the page imported."""
    return module_handle(driver, base + MODULE, name, *args, timeout=timeout)


def wait_ready(driver, base: str, timeout: float = 30.0) -> dict:
    try:
        timings = handle(driver, base, "timings", timeout=timeout)
    except AssertionError as error:
        raise SystemExit(f"the dashboard is not ready: {error}") from None
    if timings["firstMatrixMs"] is None:
        raise SystemExit("the dashboard drew no matrix")
    return timings


def choose(driver, select_id: str, label_start: str) -> None:
    driver.execute_script(
        "const s = document.getElementById(arguments[0]);"
        "const o = Array.from(s.options).find(o => o.text.startsWith(arguments[1]));"
        "if (!o) throw new Error('no option ' + arguments[1]);"
        "s.value = o.value; s.dispatchEvent(new Event('change'));", select_id, label_start)
    time.sleep(0.8)


def set_value(driver, select_id: str, value: str) -> None:
    driver.execute_script("const s = document.getElementById(arguments[0]); s.value = arguments[1];"
                          "s.dispatchEvent(new Event('change'));", select_id, value)


def slider_times(driver, base: str, moves: int, rng: random.Random) -> list[float]:
    last = int(driver.execute_script("return document.getElementById('epoch').max"))
    times = []
    current = int(driver.execute_script("return document.getElementById('epoch').value"))
    for _ in range(moves):
        target = rng.choice([k for k in range(last + 1) if k != current] or [current])
        driver.execute_script(
            "const s = document.getElementById('epoch'); s.value = String(arguments[0]);"
            "s.dispatchEvent(new Event('input'));", target)  # redraws at once: the timing is set on return
        times.append(float(handle(driver, base, "timings")["lastRedrawMs"]))
        current = target
    return times


def measure(base: str, run: str, compare: str | None, opens: int, moves: int, shots: Path | None,
            tag: str) -> dict:
    rng = random.Random(0)
    out: dict = {"run": run}
    with chromium(1400, 1000) as driver:
        firsts = []
        for _ in range(opens):
            driver.get(f"{base}/data/plugin_entry.html?name=training_monitor")
            firsts.append(wait_ready(driver, base)["firstMatrixMs"])
        out["first_matrix_ms"] = firsts
        if not driver.execute_script("return document.getElementById('run').selectedOptions[0].text")\
                .startswith(run):
            choose(driver, "run", run)
        if shots:
            driver.save_screenshot(str(shots / f"{tag}-matrix.png"))
        for view in ("matrix", "diff", "recall"):
            set_value(driver, "view", view)
            out[f"slider_{view}_ms"] = slider_times(driver, base, moves, rng)
            if shots:
                driver.save_screenshot(str(shots / f"{tag}-{view}.png"))
        if driver.execute_script("return !document.getElementById('classes').disabled"):
            set_value(driver, "classes", "all")  # every class drawn, pooled: the heaviest redraw
            for view in ("matrix", "diff"):
                set_value(driver, "view", view)
                out[f"slider_all_{view}_ms"] = slider_times(driver, base, moves, rng)
            set_value(driver, "classes", "auto")
        set_value(driver, "view", "matrix")
        set_value(driver, "mode", "counts")
        if shots:
            driver.save_screenshot(str(shots / f"{tag}-counts.png"))
        set_value(driver, "mode", "normalized")
        if compare:
            choose(driver, "compare-run", compare)
            out["slider_side_by_side_ms"] = slider_times(driver, base, moves, rng)
            if shots:
                driver.save_screenshot(str(shots / f"{tag}-side-by-side.png"))
            choose(driver, "compare-run", "none")
        cell = driver.execute_script(
            "const t = document.querySelectorAll('#cell-values td');"
            "let best = null; for (const td of t) { if (td.dataset.true !== td.dataset.pred &&"
            " (!best || +td.dataset.count > +best.dataset.count)) best = td; }"
            "return best ? [+best.dataset.true, +best.dataset.pred] : null;")
        if cell:
            handle(driver, base, "selectCell", *cell)
            time.sleep(1.0)
            out["mistakes_shown"] = driver.execute_script(
                "return document.querySelectorAll('#mistakes figure img').length")
            if shots:
                driver.execute_script("document.getElementById('mistakes').scrollIntoView()")
                driver.save_screenshot(str(shots / f"{tag}-mistakes.png"))
        # through TensorBoard's own page: the tab, its iframe, the first matrix
        start = time.perf_counter()
        driver.get(f"{base}/#training_monitor")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            frames = driver.find_elements("css selector", "iframe")
            if frames:
                driver.switch_to.frame(frames[0])
                try:
                    if driver.execute_script("return location.pathname.endsWith('/plugin_entry.html')"):
                        wait_ready(driver, base, max(1.0, deadline - time.monotonic()))
                        break
                finally:
                    driver.switch_to.default_content()
            time.sleep(0.02)
        out["tensorboard_page_to_matrix_ms"] = 1000 * (time.perf_counter() - start)
        if shots:
            driver.save_screenshot(str(shots / f"{tag}-in-tensorboard.png"))
    return out


def summary(name: str, r: dict) -> list[str]:
    def med(key):
        return f"{statistics.median(r[key]):.0f}" if key in r else "–"

    def mx(key):
        return f"{max(r[key]):.0f}" if key in r else "–"

    return [f"| {name} | {med('first_matrix_ms')} | {r['tensorboard_page_to_matrix_ms']:.0f} "
            f"| {med('slider_matrix_ms')} ({mx('slider_matrix_ms')}) | {med('slider_diff_ms')} "
            f"({mx('slider_diff_ms')}) | {med('slider_recall_ms')} ({mx('slider_recall_ms')}) "
            f"| {med('slider_side_by_side_ms')} ({mx('slider_side_by_side_ms')}) "
            f"| {med('slider_all_matrix_ms')} ({mx('slider_all_matrix_ms')}) "
            f"| {med('slider_all_diff_ms')} ({mx('slider_all_diff_ms')}) |"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logdir", default="logs")
    p.add_argument("--run", help="run to measure (default: the first validation run)")
    p.add_argument("--compare", help="second run for the side-by-side measurement")
    p.add_argument("--synthetic", action="store_true", help="also a synthetic 1,000-class x 30-epoch log")
    p.add_argument("--opens", type=int, default=5)
    p.add_argument("--moves", type=int, default=20)
    p.add_argument("--screenshots", type=Path)
    p.add_argument("--out", type=Path, help="raw figures as JSON (and the table beside it as .md)")
    args = p.parse_args(argv)
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    results = {}

    def runs_ready(base):
        return bool(get_json(base, f"{PLUGIN}/runs")["runs"])

    with tempfile.TemporaryDirectory() as tmp:
        with tensorboard(Path(args.logdir), Path(tmp) / "tb.log", runs_ready) as base:
            runs = get_json(base, f"{PLUGIN}/runs")["runs"]
            run = args.run or next(r["run"] for r in runs if r["split"] == "validation")
            results[run] = measure(base, run, args.compare, args.opens, args.moves, args.screenshots, "run")
        if args.synthetic:
            from tests.synthetic_logs import write_run

            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            write_run(Path(tmp) / "synthetic" / "k1000" / "monitor", classes=1000, epochs=30, per_class=10,
                      mistakes=8)
            with tensorboard(Path(tmp) / "synthetic", Path(tmp) / "tb2.log", runs_ready) as base:
                results["1,000 classes x 30 epochs (synthetic)"] = measure(
                    base, "k1000/monitor", None, args.opens, args.moves, args.screenshots, "k1000")
                if args.screenshots:
                    with chromium(1400, 1000) as driver:
                        driver.get(f"{base}/data/plugin_entry.html?name=training_monitor")
                        wait_ready(driver, base)
                        set_value(driver, "classes", "all")
                        time.sleep(0.5)
                        driver.save_screenshot(str(args.screenshots / "k1000-all-classes.png"))
    lines = ["| run | first matrix, dashboard page ms (median) | TensorBoard page to first matrix ms "
             "| slider redraw ms, matrix: median (max) | diff | recall | side by side "
             "| all classes: matrix | all classes: diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines += summary(name, r)
    table = "\n".join(lines)
    print(table)
    for name, r in results.items():
        print(f"{name}: mistakes shown after a click: {r.get('mistakes_shown')}", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
        args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
