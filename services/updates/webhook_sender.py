"""Sending webhook deliveries that are due: a periodic task of the updates worker.

A sweep takes due deliveries one at a time (``FOR UPDATE SKIP LOCKED``, so replicas share them;
taking one moves its ``next_attempt_at`` to a lease, ``lease_seconds``, longer than a request
may last: a sender that dies mid-request leaves it to be taken again then) and hands each to a
bounded pool of ``workers`` threads, at most one request per endpoint and ``per_organisation``
per organisation at a time, so a slow endpoint holds up only its own deliveries. Each request
(``post``) goes to the addresses ``shared.webhooks.target_of`` checked (the host resolved once,
every address public; TLS's server name and the certificate are the host's), with no redirects
followed, and ends at ``DEARMP_WEBHOOK_TIMEOUT_SECONDS`` whatever the receiver does: at the
deadline its socket is shut. Of the answer only the status is kept, and at most ``MAX_ANSWER``
bytes are read. The sweep's thread records each outcome in one statement:

- a 2xx: ``delivered``;
- anything else (another status, refused, timed out): a row in the failure log, and the next
  attempt after ``DEARMP_WEBHOOK_RETRY_SECONDS`` doubling per attempt up to
  ``DEARMP_WEBHOOK_RETRY_MAX_SECONDS``; after ``DEARMP_WEBHOOK_MAX_ATTEMPTS`` it is ``failed``.
  An address that is not public is recorded as ``refused: not a public address`` and never
  connected to, so the log cannot tell an open port from a closed one.

After one endpoint fails, the rest of the sweep leaves that endpoint alone (a receiver that is
down costs one attempt per sweep, not one per delivery). Every attempt sends the same body and
event id, newly signed. Logs name deliveries and endpoints by id only: bodies hold names and
email addresses. The limits on concurrent requests are per worker process.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from sqlalchemy.engine import Engine
from urllib3.connection import HTTPConnection, HTTPSConnection

from shared import webhook_signing
from shared.config import Settings
from shared.logging import get_logger
from shared.webhooks import Resolve, Target, WebhookError, resolve_host, target_of

log = get_logger(__name__)

USER_AGENT = "DearMP-Webhooks/1"
MAX_ANSWER = 4096  # bytes of a receiver's answer read, at most (only its status is used)

_TAKE = sa.text(
    """
UPDATE webhook_deliveries d SET next_attempt_at = :lease_until
FROM webhook_endpoints e
WHERE e.id = d.endpoint_id AND d.id = (
    SELECT due.id FROM webhook_deliveries due
    JOIN webhook_endpoints owner ON owner.id = due.endpoint_id
    WHERE due.state = 'pending' AND due.next_attempt_at <= :now AND due.body IS NOT NULL
      AND due.endpoint_id <> ALL(CAST(:skip AS bigint[]))
      AND owner.organisation <> ALL(CAST(:busy_organisations AS text[]))
    ORDER BY due.next_attempt_at, due.id LIMIT 1 FOR UPDATE OF due SKIP LOCKED)
RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempts, e.url, e.secret,
          e.organisation
"""
)

_DELIVERED = sa.text(
    "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, "
    "finished_at = :now WHERE id = :id AND state = 'pending'"
)
# The attempt's failure and the delivery's next step, in one statement.
_FAILED = sa.text(
    """
WITH d AS (
    UPDATE webhook_deliveries SET attempts = attempts + 1,
        state = CASE WHEN attempts + 1 >= :max_attempts THEN 'failed' ELSE 'pending' END,
        finished_at = CASE WHEN attempts + 1 >= :max_attempts THEN :now END,
        next_attempt_at = :retry_at
    WHERE id = :id AND state = 'pending'
    RETURNING id, attempts, state
)
INSERT INTO webhook_failures (delivery_id, attempt, at, status_code, error, gave_up)
SELECT id, attempts, :now, :status_code, :error, state = 'failed' FROM d
RETURNING gave_up
"""
)


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    delay = settings.webhook_retry_seconds * 2 ** max(0, attempts - 1)
    return float(min(delay, settings.webhook_retry_max_seconds))


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: the receiver's status (None: no answer), and what went wrong
    (None: a 2xx)."""

    status: int | None
    error: str | None


def default_tls() -> ssl.SSLContext:
    """Certificates checked against the same CA bundle as ``requests``, for the host's name."""
    return ssl.create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH)


def post(
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    *,
    seconds: float,
    tls: ssl.SSLContext,
    started: float | None = None,
) -> Outcome:
    """POST ``body`` to the first of ``target.addresses`` that takes the connection (no other
    look-up: urllib3 is given the address, and the host's name only as TLS's server name, which
    the certificate must match, and as the Host header), all of it within ``seconds`` of
    ``started`` (``time.monotonic()``; now if None)."""
    late = Outcome(None, f"no answer within {seconds:g} s")
    deadline = (time.monotonic() if started is None else started) + seconds
    held: list[HTTPConnection] = []
    cut = threading.Event()
    # A socket timeout bounds each read, not the whole answer (a receiver that sends a byte a
    # second never times out), so at the deadline a timer shuts the socket under the request.
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), _cut_off, (held, cut))
    timer.daemon = True
    timer.start()
    try:
        conn = _connect(target, deadline, tls, held)
        if conn is None:
            timed_out = cut.is_set() or time.monotonic() >= deadline
            return late if timed_out else Outcome(None, "could not connect")
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header, "User-Agent": USER_AGENT},
            preload_content=False,
            decode_content=False,
        )
        answer = conn.getresponse()
        if cut.is_set():  # the answer's head was cut short (http.client takes the end as its end)
            return late
        status = answer.status
        with suppress(Exception):  # the status is the answer; the rest is read only to be polite
            answer.read(MAX_ANSWER)
    except ssl.SSLError:
        return late if cut.is_set() else Outcome(None, "TLS failed (certificate or handshake)")
    except Exception as exc:
        if cut.is_set() or isinstance(exc, TimeoutError):
            return late
        return Outcome(None, f"request failed: {type(exc).__name__}")
    finally:
        timer.cancel()
        for conn in held:
            conn.close()
    if 200 <= status < 300:
        return Outcome(status, None)
    return Outcome(status, f"HTTP {status}")


def _connect(
    target: Target, deadline: float, tls: ssl.SSLContext, held: list[HTTPConnection]
) -> HTTPConnection | None:
    """A connection to one of the target's addresses, tried in order; None if none answered."""
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        conn: HTTPConnection
        if target.scheme == "https":
            conn = HTTPSConnection(
                address,
                target.port,
                timeout=remaining,
                server_hostname=target.host,
                ssl_context=tls,
            )
        else:  # http://127.0.0.1, when allowed (tests, development)
            conn = HTTPConnection(address, target.port, timeout=remaining)
        held.append(conn)
        try:
            conn.connect()
        except ssl.SSLError:
            raise
        except Exception:  # refused, unreachable, timed out: the next address, if any
            continue
        return conn
    return None


def _cut_off(held: list[HTTPConnection], cut: threading.Event) -> None:
    cut.set()
    for conn in held:
        sock = conn.sock
        if sock is not None:
            with suppress(OSError, ValueError):
                sock.shutdown(socket.SHUT_RDWR)


class WebhookSender:
    """``sender()`` takes and sends what is due for up to ``slice_seconds`` and returns how
    many deliveries it recorded as delivered. A request still under way when the slice ends
    goes on, and its outcome is recorded by the next call (or ``close()``), so a slow endpoint
    never holds a sweep. One per worker process (it keeps the pool of request threads and the
    requests under way); ``resolve`` and ``tls`` are for tests."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        slice_seconds: float = 10.0,
        *,
        workers: int = 8,
        per_organisation: int = 2,
        resolve: Resolve = resolve_host,
        tls: ssl.SSLContext | None = None,
    ):
        self.engine, self.settings, self.slice_seconds = engine, settings, slice_seconds
        self.workers, self.per_organisation = workers, per_organisation
        self.resolve = resolve
        self.tls = tls or default_tls()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="webhook")
        self.running: dict[Future[Outcome], Any] = {}

    @property
    def lease_seconds(self) -> float:
        """How long a taken delivery is left alone by other senders: longer than a request."""
        return self.settings.webhook_timeout_seconds * 2 + 30

    def __call__(self) -> int:
        failed: set[int] = set()  # endpoints that failed in this call: left alone until the next
        delivered = self._collect(0, failed)
        stop_taking = time.monotonic() + self.slice_seconds
        while True:
            while len(self.running) < self.workers and time.monotonic() < stop_taking:
                row = self._take(failed)
                if row is None:
                    break
                self.running[self.pool.submit(self._attempt, row)] = row
            left = stop_taking - time.monotonic()
            if not self.running or left <= 0:
                return delivered
            # Wake when a request ends, or to take deliveries that fell due meanwhile.
            delivered += self._collect(min(left, self.settings.webhook_sweep_seconds), failed)

    def close(self) -> None:
        """Let the requests under way end (each within the timeout) and record them."""
        while self.running:
            self._collect(None, set())
        self.pool.shutdown(wait=True)

    def _collect(self, timeout: float | None, failed: set[int]) -> int:
        """Record the requests that ended (waiting up to ``timeout`` for one); how many were
        delivered."""
        delivered = 0
        if not self.running:
            return 0
        done, _ = wait(self.running, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            row = self.running.pop(future)
            outcome = future.result()
            if outcome.error is None:
                delivered += 1
                self._record_delivered(row)
            else:
                failed.add(row.endpoint_id)
                self._record_failure(row, outcome.status, outcome.error)
        return delivered

    def _autocommit(self) -> Any:
        # Each statement stands alone: no BEGIN and COMMIT round trips around it.
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _take(self, failed: set[int]) -> Any:
        """A due delivery for an endpoint with no request under way (nor failed in this call),
        of an organisation with fewer than ``per_organisation`` under way."""
        running = self.running.values()
        busy = [row.endpoint_id for row in running]
        per_organisation = Counter(row.organisation for row in running)
        full = [org for org, n in per_organisation.items() if n >= self.per_organisation]
        now = datetime.now(UTC)
        with self._autocommit() as conn:
            return conn.execute(
                _TAKE,
                {
                    "now": now,
                    "lease_until": now + timedelta(seconds=self.lease_seconds),
                    "skip": busy + sorted(failed),
                    "busy_organisations": full,
                },
            ).first()

    def _attempt(self, row: Any) -> Outcome:
        """One delivery's request (on a pool thread; no database here). The deadline counts
        from before the look-up: nothing is sent after it, so never after the lease."""
        started = time.monotonic()
        try:
            target = target_of(
                row.url,
                allow_http_localhost=self.settings.webhooks_allow_http_localhost,
                resolve=self.resolve,
            )
        except WebhookError as exc:
            return Outcome(None, str(exc))
        body = bytes(row.body)
        headers = webhook_signing.headers(row.secret, str(row.event_id), row.event_type, body)
        seconds = self.settings.webhook_timeout_seconds
        return post(target, body, headers, seconds=seconds, tls=self.tls, started=started)

    def _record_delivered(self, row: Any) -> None:
        with self._autocommit() as conn:
            conn.execute(_DELIVERED, {"id": row.id, "now": datetime.now(UTC)})
        log.info("webhook delivered", delivery=row.id, endpoint=row.endpoint_id)

    def _record_failure(self, row: Any, status: int | None, error: str) -> None:
        now = datetime.now(UTC)
        attempts = row.attempts + 1
        retry_at = now + timedelta(seconds=backoff(self.settings, attempts))
        with self._autocommit() as conn:
            gave_up = conn.execute(
                _FAILED,
                {
                    "id": row.id,
                    "now": now,
                    "retry_at": retry_at,
                    "max_attempts": self.settings.webhook_max_attempts,
                    "status_code": status,
                    "error": error,
                },
            ).scalar()
        log.warning(
            "webhook gave up" if gave_up else "webhook attempt failed, will retry",
            delivery=row.id,
            endpoint=row.endpoint_id,
            attempt=attempts,
            error=error,
        )


def expire(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Retention: bodies of finished deliveries after ``webhook_body_hours``, finished rows
    (and their failure log) after ``webhook_retention_days``. Returns (bodies, rows)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        bodies = conn.execute(
            sa.text(
                "UPDATE webhook_deliveries SET body = NULL WHERE state <> 'pending' "
                "AND body IS NOT NULL AND finished_at < :cutoff"
            ),
            {"cutoff": now - timedelta(hours=settings.webhook_body_hours)},
        ).rowcount
        rows = conn.execute(
            sa.text(
                "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < :cutoff"
            ),
            {"cutoff": now - timedelta(days=settings.webhook_retention_days)},
        ).rowcount
    return bodies, rows
