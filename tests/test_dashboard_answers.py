"""The plugin's answer cache: concurrent viewers share one build; a new listing is a new answer."""

import gzip
import threading
import time

from monitor.dashboard.answers import AnswerCache, Fragments, listing_key


def test_concurrent_askers_of_one_answer_share_one_build():
    cache, builds = AnswerCache(), []

    def build():
        builds.append(1)
        time.sleep(0.2)  # long enough for every asker to arrive while it builds
        return b"answer"

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("k", build))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [gzip.decompress(g) for g in got] == [b"answer"] * 20 and len(builds) == 1
    assert len({id(g) for g in got}) == 1  # compressed once, the same bytes for every asker


def test_a_new_epoch_in_the_listing_is_a_new_key_and_old_answers_are_dropped():
    entry = {"confusion": {"t/epochs_001-010": 4}, "wall": {"confusion": 10.0}}
    before = listing_key(entry, ("confusion",))
    entry["confusion"]["t/epochs_001-010"] = 5
    entry["wall"]["confusion"] = 11.0
    assert listing_key(entry, ("confusion",)) != before
    cache = AnswerCache(max_answers=2)
    for k in range(3):
        cache.get(k, lambda k=k: str(k).encode())
    assert gzip.decompress(cache.get(0, lambda: b"rebuilt")) == b"rebuilt"  # the oldest was dropped
    assert gzip.decompress(cache.get(2, lambda: b"never")) == b"2"


def test_fragments_are_built_once_and_the_least_recently_used_dropped_past_their_budget():
    fragments, builds = Fragments(max_bytes=10), []

    def build(value: bytes):
        return lambda: builds.append(value) or value

    assert fragments.get("a", build(b"aaaa")) == b"aaaa"
    assert fragments.get("a", build(b"never")) == b"aaaa" and builds == [b"aaaa"]
    fragments.get("b", build(b"bbbb"))
    fragments.get("a", build(b"never"))  # "a" is now the most recently used
    fragments.get("c", build(b"cccc"))  # 12 bytes > 10: "b" goes
    assert fragments.get("a", build(b"never")) == b"aaaa"
    assert fragments.get("b", build(b"BBBB")) == b"BBBB" and builds == [b"aaaa", b"bbbb", b"cccc", b"BBBB"]


def test_a_warmed_answer_is_built_once_in_the_background_and_found_by_the_asker():
    cache, builds = AnswerCache(), []
    started = threading.Event()

    def build():
        builds.append(1)
        started.set()
        time.sleep(0.2)
        return b"warm"

    cache.warm("k", build)
    cache.warm("k", build)  # already on its way
    assert started.wait(5)
    assert gzip.decompress(cache.get("k", lambda: b"never")) == b"warm"  # waits for that one build
    cache.warm("k", build)  # held: nothing to do
    assert builds == [1]
