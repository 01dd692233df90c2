"""The per-copy delivery marks of a fan-out, sent without waiting for the answer.

One statement per copy marks the previous copy ``sent`` (or ``failed``) and claims the next one:
``sending``, or ``skipped`` if its subscriber has left since it was recorded (the unsubscribe check
at send time). Each is its own transaction (the connection is in autocommit) with
``synchronous_commit = off``: it does not wait for the WAL flush, survives the worker being
killed, and is lost only if Postgres itself crashes.

``begin()`` sends the statement and returns at once; ``result()`` waits for it. The fan-out
begins the mark, writes the copy and opens the SMTP envelope meanwhile, and asks for the result
before the copy's content goes (``UpdateSender.send_bytes(ready=…)``). So the round trip to
Postgres is off the critical path, and still no copy is sent before the previous one is marked
``sent`` and this one ``sending``: a crash leaves at most one delivered copy unmarked.

It uses psycopg's libpq layer (``psycopg.pq``) on a connection of its own, one statement in flight
at a time.
"""

from __future__ import annotations

import select

import psycopg
from psycopg import pq
from sqlalchemy.engine import Connection

STEP = b"""
WITH finished AS (
    UPDATE update_deliveries SET state = $2, sent_at = now(), error = $3
    WHERE id = $1 AND state = 'sending'
    RETURNING id
), claimed AS (
    UPDATE update_deliveries d
    SET state = CASE WHEN s.subscribed THEN 'sending' ELSE 'skipped' END,
        sends = d.sends + CASE WHEN s.subscribed THEN 1 ELSE 0 END
    FROM subscribers s
    WHERE d.id = $4 AND d.state = 'pending' AND s.id = d.subscriber_id
    RETURNING d.state
)
SELECT (SELECT state FROM claimed)
"""
_NAME = b"dearmp_fanout_step"
_TYPES = [20, 25, 25, 20]  # bigint, text, text, bigint


def _check(result: pq.abc.PGresult | None, wanted: pq.ExecStatus) -> pq.abc.PGresult:
    if result is None or result.status != wanted:
        detail = result.error_message.decode(errors="replace") if result else "no result"
        raise psycopg.OperationalError(f"delivery mark failed: {detail.strip()}")
    return result


def _encode(value: int | str | None) -> bytes | None:
    return None if value is None else str(value).encode()


class Marks:
    def __init__(self, conn: Connection):
        """``conn``: a connection for the marks alone, in autocommit mode."""
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection) and driver.autocommit
        conn.exec_driver_sql("SET synchronous_commit = off")
        prepared = conn.exec_driver_sql(
            "SELECT 1 FROM pg_prepared_statements WHERE name = %(name)s",
            {"name": _NAME.decode()},
        ).first()
        self._pg = driver.pgconn
        if prepared is None:  # a pooled connection keeps it from an earlier sweep
            _check(self._pg.prepare(_NAME, STEP, _TYPES), pq.ExecStatus.COMMAND_OK)
        self._waiting = False
        self._state: str | None = None
        # A delivered copy whose mark was sent but not yet answered: if the connection is lost
        # meanwhile, the fan-out marks it when it can (``Fanout``), instead of sending it again.
        self.in_doubt: tuple[int, str, str | None] | None = None

    def begin(
        self, *, done: int | None, outcome: str, claim: int | None, error: str | None = None
    ) -> None:
        """Send the mark; ``done`` becomes ``outcome`` (sent/failed), ``claim`` is claimed."""
        self.result()  # one in flight at a time
        self.in_doubt = (done, outcome, error) if done is not None else None
        values = [_encode(done), outcome.encode(), _encode(error), _encode(claim)]
        self._pg.send_query_prepared(_NAME, values)
        while self._pg.flush():  # a non-blocking connection may not take it all at once
            select.select([], [self._pg.socket], [], 5)
        self._waiting = True

    def result(self) -> str | None:
        """The claimed delivery's new state (``sending``, ``skipped``), or None if there was
        nothing to claim (no ``claim``, or the delivery is gone). Waits for the mark if needed."""
        if not self._waiting:
            return self._state
        pg = self._pg
        pg.consume_input()
        while pg.is_busy():
            select.select([pg.socket], [], [], 5)
            pg.consume_input()
        outcome = None
        while (result := pg.get_result()) is not None:
            outcome = outcome or result
        self._waiting = False
        value = _check(outcome, pq.ExecStatus.TUPLES_OK).get_value(0, 0)
        self.in_doubt = None
        self._state = value.decode() if value is not None else None
        return self._state

    def mark(
        self, *, done: int | None, outcome: str, claim: int | None = None, error: str | None = None
    ) -> str | None:
        self.begin(done=done, outcome=outcome, claim=claim, error=error)
        return self.result()
