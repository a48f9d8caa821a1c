"""Exceptions for problems with the user's input.

`train.py` catches `MonitorError`, prints it on one line to stderr and exits 2.
"""

from __future__ import annotations


class MonitorError(Exception):
    """A problem with the user's input; str(err) is one line: what is wrong, what to do."""


class DataError(MonitorError):
    """The training data is missing, unreadable or malformed."""
