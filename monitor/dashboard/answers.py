"""A small cache of the plugin's serialised answers, shared by concurrent viewers.

An answer is keyed by what was asked and by the listing it was built from (each tag's newest
step and wall time), so a new epoch makes a new key and nothing stale is ever served. Viewers
asking for the same answer at the same time wait for one build instead of each reading the
data provider: 20 viewers opening one run cost one read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_ANSWERS = 32  # answers kept (least recently used dropped): a few runs x splits x since values


class AnswerCache:
    """`get(key, build)`: the bytes `build()` made for `key`, built once however many ask at once."""

    def __init__(self, max_answers: int = MAX_ANSWERS):
        self._max = max_answers
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:  # the first asker builds; the others wait here, then find it
            with self._lock:
                if key in self._answers:
                    return self._answers[key]
            answer = build()
            with self._lock:
                self._answers[key] = answer
                while len(self._answers) > self._max:
                    self._answers.popitem(last=False)
                self._building.pop(key, None)
            return answer


def listing_key(entry: dict, kinds: tuple[str, ...]) -> tuple:
    """What an answer over `kinds` was built from: each tag's newest step and each kind's newest
    wall time, as listed."""
    return tuple((kind, tuple(sorted(entry[kind].items())), entry["wall"].get(kind)) for kind in kinds)
