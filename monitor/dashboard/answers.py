"""Small caches of the plugin's serialised answers, shared by concurrent viewers.

An answer is keyed by what was asked and by the listing it was built from (each tag's newest
step and wall time), so a new epoch makes a new key and nothing stale is ever served. Viewers
asking for the same answer at the same time wait for one build instead of each reading the
data provider: 20 viewers opening one run cost one read. Answers are kept gzipped (compressed
once, not once per browser that asks; TensorBoard un-gzips them for a client that does not
accept gzip), and the JSON of each epoch is kept apart (`Fragments`), so a whole-run answer
after a new epoch serialises only that epoch.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

MAX_ANSWERS = 32  # answers kept (least recently used dropped): a few runs x splits x since values
MAX_FRAGMENT_BYTES = 64 << 20  # epochs' JSON kept: 150 epochs of 1,000 classes are ~5 MB
GZIP_LEVEL = 1  # a 4.6 MB answer: 40 ms at level 1 against 120 ms at TensorBoard's 3, 5% larger


class AnswerCache:
    """`get(key, build)`: the gzipped bytes of what `build()` made for `key`, built and compressed
    once however many ask at once."""

    def __init__(self, max_answers: int = MAX_ANSWERS):
        self._max = max_answers
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self._warmer: ThreadPoolExecutor | None = None
        self._warmed: set[Hashable] = set()  # each key warmed once: many runs must not evict each other

    def warm(self, key: Hashable, build: Callable[[], bytes]) -> None:
        """Builds the answer for `key` in the background (one build at a time) unless it is held, being
        built or was warmed before: a viewer who then asks finds it, or waits for that one build."""
        with self._lock:
            if key in self._answers or key in self._building or key in self._warmed:
                return
            if len(self._warmed) > 16 * self._max:
                self._warmed.clear()
            self._warmed.add(key)
            if self._warmer is None:
                self._warmer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answers")
            self._building[key] = threading.Lock()
        self._warmer.submit(self._quietly, key, build)

    def _quietly(self, key: Hashable, build: Callable[[], bytes]) -> None:
        try:
            self.get(key, build)
        except Exception:  # noqa: BLE001  (a viewer asking builds it again and sees the error)
            with self._lock:
                self._building.pop(key, None)

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
            answer = gzip.compress(build(), compresslevel=GZIP_LEVEL, mtime=0)
            with self._lock:
                self._answers[key] = answer
                while len(self._answers) > self._max:
                    self._answers.popitem(last=False)
                self._building.pop(key, None)
            return answer


class Fragments:
    """`get(key, build)`: the bytes `build()` made for `key` (one epoch's JSON), kept while they fit
    in `max_bytes` (least recently used dropped)."""

    def __init__(self, max_bytes: int = MAX_FRAGMENT_BYTES):
        self._max, self._size = max_bytes, 0
        self._kept: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        fragment = build()
        with self._lock:
            if key not in self._kept:
                self._kept[key] = fragment
                self._size += len(fragment)
            while self._size > self._max and self._kept:
                self._size -= len(self._kept.popitem(last=False)[1])
        return fragment


def listing_key(entry: dict, kinds: tuple[str, ...]) -> tuple:
    """What an answer over `kinds` was built from: each tag's newest step and each kind's newest
    wall time, as listed."""
    return tuple((kind, tuple(sorted(entry[kind].items())), entry["wall"].get(kind)) for kind in kinds)
