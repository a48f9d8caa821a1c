"""The shape of the code: one-way imports between packages, readers that need no TensorFlow,
and small functions. `python -m pytest -q tests/test_code_shape.py` checks all of it."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PY = sorted([*ROOT.glob("monitor/**/*.py"), *ROOT.glob("callbacks/*.py"), *ROOT.glob("runner/*.py"),
                     ROOT / "train.py", ROOT / "predict.py"])
PRODUCT_JS = sorted(ROOT.glob("monitor/dashboard/static/*.js"))
MAX_PY_LINES = 60
MAX_JS_LINES = 80
# Who may import whom: entry points -> runner -> callbacks -> monitor (the library).
FORBIDDEN = {"monitor": {"callbacks", "runner", "train", "predict"},
             "callbacks": {"runner", "train", "predict"},
             "runner": {"train", "predict"}}


def _imported_packages(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def import_violations() -> list[str]:
    out = []
    for path in PRODUCT_PY:
        package = path.relative_to(ROOT).parts[0]
        bad = _imported_packages(path) & FORBIDDEN.get(package, set())
        out += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(bad)]
    return out


def test_imports_flow_one_way():
    assert import_violations() == []


def test_the_import_check_sees_a_violation(tmp_path):
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    from callbacks.suite import monitoring_callbacks\n")
    assert "callbacks" in _imported_packages(fake)


def _python_functions() -> list[tuple[int, str]]:
    out = []
    for path in PRODUCT_PY:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                out.append((node.end_lineno - node.lineno + 1, where))
    return out


FUNCTION_START = re.compile(r"^\s*(?:export\s+)?(?:async\s+)?function\s+(\w+)|^\s*(?:static\s+)?(?:async\s+)?"
                            r"(\w+)\s*\([^)]*\)\s*\{\s*$")


def js_functions(text: str) -> list[tuple[int, str]]:
    """(lines, name) of every named function and class method, by brace matching from its line."""
    lines, out = text.splitlines(), []
    for i, line in enumerate(lines):
        match = FUNCTION_START.match(line)
        name = match and (match.group(1) or match.group(2))
        if not name or name in ("if", "for", "while", "switch", "catch"):
            continue
        depth, seen = 0, False
        for j in range(i, len(lines)):
            depth += lines[j].count("{") - lines[j].count("}")
            seen = seen or "{" in lines[j]
            if seen and depth <= 0:
                out.append((j - i + 1, name))
                break
    return out


def test_python_functions_are_small():
    functions = _python_functions()
    assert len(functions) > 300  # the scan sees the code
    assert [f for f in functions if f[0] > MAX_PY_LINES] == []


def test_javascript_functions_are_small():
    functions = [(n, f"{p.name} {name}") for p in PRODUCT_JS for n, name in js_functions(p.read_text())]
    assert len(functions) > 40
    assert [f for f in functions if f[0] > MAX_JS_LINES] == []
    assert js_functions("function big() {\n" + "  x();\n" * 90 + "}\n") == [(92, "big")]


def _write_run(run_dir: Path) -> None:
    """A small run directory as train.py leaves it: metrics.json, JSONL, CSVs, an event file."""
    import tensorflow as tf

    from monitor import summaries
    from monitor.render import prediction_grid
    from monitor.runfiles import matrices, per_class_csv, record, test_confusion

    names = ["cat", "dog", "bird"]
    cm = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 6]])
    history = {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5]}
    flags = {"model": "simple", "dataset": "mnist", "epochs": 3}
    record.write(str(run_dir), {"status": "running", "flags": flags, "history": history, "epochs_run": 2})
    for epoch in range(2):
        matrices.append(str(run_dir), epoch, names, cm)
        per_class_csv.append(str(run_dir), cm, names, epoch)
    test_confusion.write(str(run_dir), cm, names)
    images = np.random.default_rng(0).random((3, 8, 8, 3))
    png = prediction_grid(images, [0, 1, 2], [0, 2, 2], [0.9, 0.8, 0.7], names, "grid")
    writer = tf.summary.create_file_writer(str(run_dir / "monitor"))
    with writer.as_default():
        for epoch in range(3):
            summaries.png_image("predictions/grid/epochs_001-010", png, epoch)
    writer.close()


READER = """
import sys, json
from monitor import compare, report, resume
from monitor.runfiles import matrices, record
import monitor.dashboard.plugin, monitor.predict
run = sys.argv[1]
report.build_report(run)
table = compare.comparison_table(compare.load_runs([run]))
dropped = resume.truncate_run(run, 1)
print(json.dumps({"tf": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
                  "dropped": dropped, "lines": len(matrices.read_lines(run)), "table": table}))
"""


def test_readers_of_a_run_need_no_tensorflow(tmp_path):
    """Report, compare, resume's truncation, predict's and the plugin's modules read a run
    without importing TensorFlow or Keras."""
    _write_run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", READER, str(tmp_path)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["tf"] is False and result["keras"] is False
    assert result["dropped"] == {os.path.join("monitor", os.listdir(tmp_path / "monitor")[0]): 2}
    assert result["lines"] == 1 and "| simple |" in result["table"]
    assert (tmp_path / "report.html").stat().st_size > 1000 and (tmp_path / "prediction_grid.png").exists()


@pytest.mark.parametrize("module", ["monitor.runfiles", "monitor.settings", "monitor.tags", "monitor.limits",
                                    "monitor.interrupts"])
def test_light_modules_import_without_tensorflow(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
