"""Shared fixtures: the synthetic data sets every end-to-end test trains on, and the real-data marker.

The tests never read the developer's `MONITOR_DATA_DIR` except in tests marked `real_data`
(skipped without it): everything else passes `--data-dir` (or its own environment) pointing at the
synthetic files, so the same tests run with and without real data on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import synthetic_data

REAL_DATA_REASON = "real data: set MONITOR_DATA_DIR to a folder with the real mnist.npz and cifar10.npz"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("real_data") and not os.environ.get("MONITOR_DATA_DIR"):
        pytest.skip(REAL_DATA_REASON)


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> Path:
    """A folder holding the synthetic mnist.npz and cifar10.npz (tests/synthetic_data.py), written once."""
    return synthetic_data.write(tmp_path_factory.mktemp("synthetic_data"))


@pytest.fixture
def real_data_dir() -> str:
    """$MONITOR_DATA_DIR, for tests marked `real_data` (which are skipped without it)."""
    folder = os.environ.get("MONITOR_DATA_DIR")
    if not folder:
        pytest.skip(REAL_DATA_REASON)
    return folder
