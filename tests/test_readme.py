"""The README's Python examples run as written (on the synthetic CIFAR-10, tests/synthetic_data.py)."""

import os
import re

import keras
import numpy as np

from tests.helpers import read_tags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_script_examples(tmp_path, monkeypatch, synthetic_data_dir):
    """Every ```python block: the drop-in example and the MirroredStrategy one."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) == 2
    with np.load(synthetic_data_dir / "cifar10.npz", allow_pickle=False) as d:
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
