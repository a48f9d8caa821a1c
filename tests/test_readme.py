"""The README's Python examples run as written (on a small subset of the real data)."""

import os
import re

import keras
import numpy as np
import pytest

from tests.helpers import read_tags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("MONITOR_DATA_DIR")


@pytest.mark.skipif(not DATA_DIR, reason="MONITOR_DATA_DIR is not set (real data sets)")
def test_readme_script_examples(tmp_path, monkeypatch):
    """Every ```python block: the drop-in example and the MirroredStrategy one."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) == 2
    with np.load(os.path.join(DATA_DIR, "cifar10.npz"), allow_pickle=False) as d:
        small = ((d["x_train"][:400], d["y_train"][:400]), (d["x_test"][:10], d["y_test"][:10]))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: small)  # no download in tests
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        code = block.replace("epochs=10", "epochs=2")
        exec(compile(code, "README.md", "exec"), {})
        run = re.search(r'"(logs/[^"]+)"', code).group(1)
        tags = read_tags(str(tmp_path / run))
        assert tags["monitor"]["confusion_matrix/normalized/epochs_001-010"] == [0, 1], run
        assert tags["train"]["epoch_loss"] == [0, 1], run
