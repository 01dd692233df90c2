"""One per-process cache for values read from the database on a hot path (a campaign, a seat's
member, an organisation's sender name or brand, a campaign's counts).

One policy everywhere: each key is loaded at most every ``ttl`` seconds, so a change made
elsewhere shows that late; a miss (``None``) is remembered like any value, so an unknown key
costs one statement per ``ttl`` and not one per call; at most ``max_size`` keys are kept (past
it, all are forgotten at once: the next calls load them again). Safe between threads: the table
is changed under a lock, and a load runs outside it (a slow database holds up only the callers
of that key), unless ``single_flight``: then one load runs at a time in the process and the
callers that waited for it take its value (for an aggregate query many requests want at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, max_size: int = 1000, *, single_flight: bool = False) -> None:
        self.ttl, self.max_size = ttl, max_size
        self._found: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()
        self._loading = threading.Lock() if single_flight else None

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value for ``key``, from ``load()`` when it is not known or older than ``ttl``."""
        hit = self._fresh(key)
        if hit is not None:
            return hit[1]
        if self._loading is None:
            return self._load(key, load)
        with self._loading:
            hit = self._fresh(key)  # loaded while this caller waited
            return hit[1] if hit is not None else self._load(key, load)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()

    def _fresh(self, key: K) -> tuple[float, V] | None:
        with self._lock:
            hit = self._found.get(key)
        return hit if hit is not None and time.monotonic() - hit[0] < self.ttl else None

    def _load(self, key: K, load: Callable[[], V]) -> V:
        now = time.monotonic()
        value = load()
        with self._lock:
            if len(self._found) >= self.max_size:
                self._found.clear()
            self._found[key] = (now, value)
        return value
