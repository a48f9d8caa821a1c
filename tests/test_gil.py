"""monitor.gil: the switch interval lowered while the suite's Python runs beside training, and put back."""

import statistics
import sys
import threading
import time

import pytest

from monitor.gil import HANDOVER_S, quick_handover


@pytest.fixture
def interval():
    """The test's own interval, distinct from the default; the one found is put back after."""
    found = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    yield 0.004
    sys.setswitchinterval(found)


def test_lowered_inside_and_put_back_after(interval):
    with quick_handover():
        assert sys.getswitchinterval() == pytest.approx(HANDOVER_S)
    assert sys.getswitchinterval() == pytest.approx(interval)


def test_put_back_only_when_the_last_user_ends(interval):
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def other():
        with quick_handover():
            first_in.set()
            release.wait(10)
        second_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    first_in.wait(10)
    with quick_handover():
        seen.append(sys.getswitchinterval())
    seen.append(sys.getswitchinterval())  # the other thread is still inside
    release.set()
    second_done.wait(10)
    thread.join()
    assert seen == [pytest.approx(HANDOVER_S), pytest.approx(HANDOVER_S)]
    assert sys.getswitchinterval() == pytest.approx(interval)


def test_a_smaller_interval_is_left_alone_and_a_change_meanwhile_is_kept(interval):
    sys.setswitchinterval(0.0001)
    with quick_handover():
        assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    sys.setswitchinterval(interval)
    with quick_handover():
        sys.setswitchinterval(0.002)  # the user's own setting, made while the suite's work ran
    assert sys.getswitchinterval() == pytest.approx(0.002)


def test_a_failure_inside_still_puts_it_back(interval):
    with pytest.raises(RuntimeError), quick_handover():
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == pytest.approx(interval)


def _reacquire_latency_ms(inside: bool) -> float:
    """Median time this thread waits for the GIL after a 1 ms sleep while another thread runs
    pure Python: about the switch interval."""
    stop = threading.Event()

    def busy():
        n = 0
        while not stop.is_set():
            n += 1

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    waits = []
    try:
        for _ in range(40):
            start = time.perf_counter()
            time.sleep(0.001)
            waits.append((time.perf_counter() - start) * 1e3 - 1.0)
    finally:
        stop.set()
        thread.join()
    return statistics.median(waits)


def test_the_thread_waiting_for_the_gil_gets_it_sooner(interval):
    """The mechanism itself: beside a thread running Python, a thread back from a sleep waits about
    the switch interval (20 ms here) for the GIL, and about HANDOVER_S (0.5 ms) inside. Compared as
    a ratio: on a busy machine both include the time the holder waits for a core."""
    sys.setswitchinterval(0.02)
    before = _reacquire_latency_ms(False)
    with quick_handover():
        during = _reacquire_latency_ms(True)
    assert before > 10.0, before
    assert during < before / 4, (during, before)
