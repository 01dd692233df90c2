"""The transactional outbox and its relay.

``add()`` writes an event row in the caller's transaction, beside the state change it announces.
The relay (``dearmp serve relay``) takes batches of unsent rows with ``FOR UPDATE SKIP LOCKED``
(so several relays can run), publishes them with confirms and ``mandatory``, and marks them sent
in the same transaction. If it dies after publishing and before committing, the rows are published
again: delivery is at-least-once, and every consumer is idempotent. A row the broker returns as
unroutable is kept, with its error, and tried again later: never dropped.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from shared.broker.publisher import ConfirmingPublisher, Message, Outcome
from shared.db import metadata
from shared.logging import error_detail, get_logger
from shared.messages import Envelope, Event
from shared.metrics import OUTBOX_PUBLISHED

log = get_logger(__name__)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("routing_key", sa.String(100), nullable=False),
    sa.Column("correlation_id", sa.String(64)),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_outbox_unsent", "available_at", "id", postgresql_where=sa.text("sent_at IS NULL")),
)


# Driver SQL: per event, compiling the Core insert cost more than running it.
_INSERT = (
    "INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at) "
    "VALUES (%(event_id)s, %(routing_key)s, %(correlation_id)s, %(body)s, %(created_at)s, "
    "%(available_at)s)"
)


def add(
    conn: Connection, event: Event, *, correlation_id: str | uuid.UUID | None = None
) -> uuid.UUID:
    """Stage ``event`` for publishing, in the caller's transaction. Returns the envelope id."""
    row = row_for(event, correlation_id=correlation_id)
    conn.exec_driver_sql(_INSERT, row)
    event_id = row["event_id"]
    assert isinstance(event_id, uuid.UUID)
    return event_id


def row_for(event: Event, *, correlation_id: str | uuid.UUID | None = None) -> dict[str, object]:
    """The outbox row that stages ``event`` (for callers that insert it in their own statement)."""
    envelope = Envelope.wrap(event, correlation_id=correlation_id)
    now = datetime.now(UTC)
    return dict(
        event_id=envelope.id,
        routing_key=envelope.type,
        correlation_id=envelope.correlation_id,
        body=envelope.to_json(),
        created_at=now,
        available_at=now,
    )


def add_many(conn: Connection, events: list[tuple[Event, str | None]]) -> None:
    rows = [row_for(event, correlation_id=correlation_id) for event, correlation_id in events]
    if rows:
        conn.execute(outbox.insert(), rows)


def backlog(conn: Connection) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    ).scalar_one()


# The relay's statements, built once. The batch is taken in (available_at, id) order, which the
# partial index ix_outbox_unsent serves directly. With ORDER BY id, once a backlog built up the
# planner preferred the primary key and walked past every row ever sent (nothing prunes them)
# on each batch: with 200,000 sent rows the relay ran at half its speed or less
# (docs/benchmarks.md).
# available_at is the insert time unless a row was pushed back for a retry.
_TAKE = (
    sa.select(
        outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.correlation_id, outbox.c.body
    )
    .where(outbox.c.sent_at.is_(None), outbox.c.available_at <= sa.bindparam("now"))
    .order_by(outbox.c.available_at, outbox.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
# While idle, one read-only statement per look instead of a transaction of three.
_ANY = sa.select(
    sa.exists().where(outbox.c.sent_at.is_(None), outbox.c.available_at <= sa.bindparam("now"))
)
# One statement per batch, whatever its size: the ids travel as a single array parameter.
_IDS = sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger))
_MARK_SENT = outbox.update().where(outbox.c.id == sa.any_(_IDS)).values(sent_at=sa.bindparam("at"))
_PUSH_BACK = (
    outbox.update()
    .where(outbox.c.id == sa.any_(_IDS))
    .values(
        attempts=outbox.c.attempts + 1,
        last_error=sa.bindparam("error"),
        available_at=sa.bindparam("retry_at"),
    )
)
RETRY_DELAY = timedelta(seconds=30)


class Relay:
    """Moves outbox rows to the broker. One instance per thread (it owns a pika connection)."""

    def __init__(self, engine: Engine, publisher: ConfirmingPublisher, *, batch_size: int = 500):
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self._idle = False  # the last look found nothing to publish

    def relay_once(self) -> int:
        """Publish one batch; return how many rows it marked sent."""
        now = datetime.now(UTC)
        if self._idle:  # a quick look first, in autocommit: mostly there is still nothing
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if not conn.execute(_ANY, {"now": now}).scalar():
                    return 0
        self._idle = False
        with self.engine.begin() as conn:
            rows = conn.execute(_TAKE, {"now": now, "limit": self.batch_size}).all()
            if not rows:
                self._idle = True
                return 0
            outcomes = self.publisher.publish_batch(
                [
                    Message(
                        routing_key=routing_key,
                        body=body,
                        message_id=str(event_id),
                        correlation_id=correlation_id,
                    )
                    for _id, event_id, routing_key, correlation_id, body in rows
                ]
            )
            sent: list[int] = []
            failed: dict[Outcome, list[int]] = {}
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is Outcome.CONFIRMED:
                    sent.append(row.id)
                    continue
                # Keep the row; try again later. Visible in `dearmp status`.
                log.error(
                    "outbox event not accepted by broker",
                    event_id=str(row.event_id),
                    routing_key=row.routing_key,
                    outcome=outcome.value,
                )
                failed.setdefault(outcome, []).append(row.id)
            if sent:
                conn.execute(_MARK_SENT, {"ids": sent, "at": datetime.now(UTC)})
            for outcome, ids in failed.items():
                conn.execute(
                    _PUSH_BACK, {"ids": ids, "error": outcome.value, "retry_at": now + RETRY_DELAY}
                )
        OUTBOX_PUBLISHED.inc(len(sent))
        return len(sent)

    def run(self, stopping, idle_sleep: float = 0.05) -> None:  # type: ignore[no-untyped-def]
        """Relay until ``stopping`` (a threading.Event) is set; reconnect with backoff on failure."""
        backoff = 0.5
        while not stopping.is_set():
            try:
                moved = self.relay_once()
                backoff = 0.5
            except Exception as exc:  # broker or database away: rows stay, try again
                log.warning(
                    "relay cannot publish, will retry",
                    error=type(exc).__name__,
                    detail=error_detail(exc),
                    retry_in=backoff,
                )
                self.publisher.close()
                stopping.wait(backoff)
                backoff = min(backoff * 2, 15)
                continue
            if moved < self.batch_size:
                self.publisher.idle(idle_sleep)  # heartbeats go on while there is nothing to do


def prune(engine: Engine, older_than: timedelta, batch: int = 5000) -> int:
    """Delete events sent longer ago than ``older_than``, a batch per transaction (short locks).
    Unsent rows are never touched."""
    cutoff = datetime.now(UTC) - older_than
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = (
                sa.select(outbox.c.id)
                .where(outbox.c.sent_at < cutoff)
                .limit(batch)
                .scalar_subquery()
            )
            count = conn.execute(outbox.delete().where(outbox.c.id.in_(ids))).rowcount
        removed += count
        if count < batch:
            return removed


def wait_until_drained(engine: Engine, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if backlog(conn) == 0:
                return True
        time.sleep(0.05)
    return False
