"""Sending webhook deliveries that are due: a periodic task of the updates worker.

Each sweep takes due deliveries one at a time (``FOR UPDATE SKIP LOCKED``, so replicas share
them; taking one moves its ``next_attempt_at`` past the request's timeout, a lease: a sender that
dies mid-request leaves it to be taken again then), POSTs it outside any transaction with
``requests`` (a timeout, no redirects followed) and records the outcome in one statement:

- a 2xx: ``delivered``;
- anything else (another status, refused, timed out): a row in the failure log, and the next
  attempt after ``DEARMP_WEBHOOK_RETRY_SECONDS`` doubling per attempt up to
  ``DEARMP_WEBHOOK_RETRY_MAX_SECONDS``; after ``DEARMP_WEBHOOK_MAX_ATTEMPTS`` it is ``failed``.

After one endpoint fails, the rest of the sweep leaves that endpoint alone (a receiver that is
down costs one attempt per sweep, not one per delivery). Every attempt sends the same body and
event id, newly signed. Logs name deliveries and endpoints by id only: bodies hold names and
email addresses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared import webhook_signing
from shared.config import Settings
from shared.logging import get_logger

log = get_logger(__name__)

_TAKE = sa.text(
    """
UPDATE webhook_deliveries d SET next_attempt_at = :lease_until
FROM webhook_endpoints e
WHERE e.id = d.endpoint_id AND d.id = (
    SELECT id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= :now AND body IS NOT NULL
      AND endpoint_id <> ALL(CAST(:skip AS bigint[]))
    ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempts, e.url, e.secret
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


class WebhookSender:
    """``sender()`` sends what is due (at most ``slice_seconds`` of work) and returns how many
    it delivered. One per worker process (it keeps a ``requests`` session)."""

    def __init__(self, engine: Engine, settings: Settings, slice_seconds: float = 10.0):
        self.engine, self.settings, self.slice_seconds = engine, settings, slice_seconds
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "DearMP-Webhooks/1"

    def __call__(self) -> int:
        delivered = 0
        skip: list[int] = []
        deadline = time.monotonic() + self.slice_seconds
        while time.monotonic() < deadline:
            row = self._take(skip)
            if row is None:
                break
            status, error = self._post(row)
            if error is None:
                delivered += 1
                self._record_delivered(row)
            else:
                skip.append(row.endpoint_id)
                self._record_failure(row, status, error)
        return delivered

    def _autocommit(self) -> Any:
        # Each statement stands alone: no BEGIN and COMMIT round trips around it.
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _take(self, skip: list[int]) -> Any:
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 30)
        with self._autocommit() as conn:
            return conn.execute(
                _TAKE, {"now": now, "lease_until": now + lease, "skip": skip}
            ).first()

    def _post(self, row: Any) -> tuple[int | None, str | None]:
        """(the status, None) for a 2xx; otherwise (the status or None, what went wrong)."""
        body = bytes(row.body)
        headers = webhook_signing.headers(row.secret, str(row.event_id), row.event_type, body)
        timeout = self.settings.webhook_timeout_seconds
        try:
            answer = self.session.post(
                row.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
            answer.close()
        except requests.Timeout:
            return None, f"no answer within {timeout:g} s"
        except requests.ConnectionError:
            return None, "could not connect"
        except requests.RequestException as exc:
            return None, f"request failed: {type(exc).__name__}"
        if 200 <= answer.status_code < 300:
            return answer.status_code, None
        return answer.status_code, f"HTTP {answer.status_code}"

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
