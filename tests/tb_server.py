"""Start the real `tensorboard` on 127.0.0.1 for a test, and read its HTTP API."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

READY_SECONDS = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, path: str, **params) -> bytes:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.read()


def get_json(base: str, path: str, **params):
    return json.loads(get(base, path, **params))


@contextlib.contextmanager
def serve(command: list[str], base: str, log_path: Path, ready: Callable[[str], bool],
          ready_seconds: float = READY_SECONDS, cwd: Path | None = None):
    """Run `command` (a TensorBoard answering at `base`), output to `log_path`, until
    `ready(base)`; yields `base`. Fails the test if it exits or is not ready within
    `ready_seconds`; the process is terminated (killed if need be) however the block ends."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ready_seconds
        while True:
            if process.poll() is not None:
                pytest.fail(f"tensorboard exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if ready(base):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass  # not listening yet, or still loading
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard not ready after {ready_seconds} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def tensorboard(logdir: Path, log_path: Path, ready: Callable[[str], bool], *args: str):
    """`python -m tensorboard.main --logdir logdir *args` on a free port of 127.0.0.1, until
    `ready(base)`; yields the base URL (see `serve`)."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", "127.0.0.1", "--port", str(port), *args]
    with serve(command, f"http://127.0.0.1:{port}", log_path, ready) as base:
        yield base
