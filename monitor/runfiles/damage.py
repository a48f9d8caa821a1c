"""Damaged run files: an event file cut short or with a corrupted record, a JSONL or CSV line cut
short. Readers skip what is damaged, read the rest, and say what they skipped once per file
(a `DamagedFileWarning`); `on_one_line(prog)` shows those warnings as one line each on stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings

_said: set[tuple[str, str]] = set()
_lock = threading.Lock()


class DamagedFileWarning(UserWarning):
    """A run file had damaged parts: they were skipped and the rest was read."""


def say(path: str, what: str) -> None:
    """Warn, once per file and process, that `what` of `path` was skipped."""
    key = (os.path.abspath(path), what)
    with _lock:
        if key in _said:
            return
        _said.add(key)
    warnings.warn(f"{path}: {what}; the rest is read", DamagedFileWarning, stacklevel=3)


@contextlib.contextmanager
def on_one_line(prog: str):
    """Inside the block, a DamagedFileWarning is printed as `<prog>: warning: <message>`."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DamagedFileWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original
