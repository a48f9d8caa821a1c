"""The README's drop-in example runs as written (on a small subset of the real data)."""

import os
import re

import keras
import numpy as np
import pytest

from tests.helpers import read_tags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("MONITOR_DATA_DIR")


@pytest.mark.skipif(not DATA_DIR, reason="MONITOR_DATA_DIR is not set (real data sets)")
def test_readme_script_example(tmp_path, monkeypatch):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) == 1
    code = blocks[0].replace("epochs=10", "epochs=2")
    with np.load(os.path.join(DATA_DIR, "cifar10.npz"), allow_pickle=False) as d:
        small = ((d["x_train"][:400], d["y_train"][:400]), (d["x_test"][:10], d["y_test"][:10]))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: small)  # no download in tests
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    tags = read_tags(str(tmp_path / "logs" / "my-run"))
    assert tags["monitor"]["confusion_matrix/normalized/epochs_001-010"] == [0, 1]
    assert tags["train"]["epoch_loss"] == [0, 1]
