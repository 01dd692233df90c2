"""The outgoing rate limit: one token bucket per process, shared by its sender threads.

Per process (per replica), as documented for ``DEARMP_SMTP_RATE``: with N mailer replicas the
provider sees up to N times the rate. Each ``acquire()`` reserves the next slot under a lock and
sleeps outside it, so threads take turns in arrival order and none holds the lock while waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``rate`` tokens per second (0 or less: unlimited), at most ``burst`` saved up."""
        self.rate = rate
        self.burst = max(1.0, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, waiting for it if need be; returns how long it waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0  # may go negative: a reservation the caller waits out
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
