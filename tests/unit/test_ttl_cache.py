"""The one per-process cache (shared/ttl_cache.py, issue 27): one load per key per ttl, a miss
remembered like a value, bounded, and (single_flight) one load at a time whose value the
waiting callers share."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared import ttl_cache
from shared.ttl_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ttl_cache.time, "monotonic", fake)
    return fake


def test_a_key_is_loaded_once_per_ttl_and_a_miss_is_remembered(clock: Clock) -> None:
    loads: list[str] = []
    cache: TtlCache[str, Any] = TtlCache(5.0)

    def load(key: str, value: Any) -> Any:
        loads.append(key)
        return value

    assert cache.get("a", lambda: load("a", 1)) == 1
    assert cache.get("missing", lambda: load("missing", None)) is None
    clock.now += 4.9
    assert cache.get("a", lambda: load("a", 2)) == 1
    assert cache.get("missing", lambda: load("missing", 3)) is None  # the miss, remembered
    clock.now += 0.2
    assert cache.get("a", lambda: load("a", 2)) == 2
    assert loads == ["a", "missing", "a"]


def test_it_keeps_at_most_max_size_keys(clock: Clock) -> None:
    cache: TtlCache[int, int] = TtlCache(5.0, max_size=3)
    for key in range(10):
        cache.get(key, lambda k=key: k)
        assert len(cache._found) <= 3
    loaded = []
    cache.get(9, lambda: loaded.append(9) or 9)
    assert loaded == []  # the newest key survives the clearing


def test_single_flight_runs_one_load_and_the_waiting_callers_share_it() -> None:
    cache: TtlCache[str, int] = TtlCache(60.0, single_flight=True)
    started, release = threading.Event(), threading.Event()
    loads = []

    def slow() -> int:
        loads.append(1)
        started.set()
        assert release.wait(10)
        return 42

    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(cache.get("counts", slow)))
    first.start()
    assert started.wait(10)
    others = [
        threading.Thread(target=lambda: answers.append(cache.get("counts", slow))) for _ in range(3)
    ]
    looked = threading.Semaphore(0)
    fresh = cache._fresh

    def counted(key: str) -> Any:
        found = fresh(key)
        looked.release()
        return found

    cache._fresh = counted  # type: ignore[method-assign]
    for thread in others:
        thread.start()
    for _ in others:  # each has looked and found nothing: it now waits on the load, or loads
        assert looked.acquire(timeout=10)
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert answers == [42, 42, 42, 42] and loads == [1]
