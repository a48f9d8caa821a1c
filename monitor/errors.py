"""Exceptions for problems with the user's input.

`train.py` catches `MonitorError`, prints it on one line to stderr and exits 2 (4 for a
`StorageError`).
"""

from __future__ import annotations


class MonitorError(Exception):
    """A problem with the user's input; str(err) is one line: what is wrong, what to do."""


class DataError(MonitorError):
    """The training data is missing, unreadable or malformed."""


class StorageError(MonitorError):
    """A run's files could not be written (a full disk, a read-only file system, a removed run
    directory): the run stopped at once (train.py exits with 4). `failure` is the
    `monitor.storage.Failure`, when known."""

    def __init__(self, message: str, failure=None):
        super().__init__(message)
        self.failure = failure
