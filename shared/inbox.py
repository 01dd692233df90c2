"""The inbox: which events each consumer has already handled.

A consumer claims an event id in the same transaction as its effect. The primary key on
(consumer, event_id) makes a second claim a no-op, and a concurrent duplicate blocks on the key
until the first transaction ends, so an effect happens at most once per event per consumer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.db import metadata

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)


_CLAIM = (
    "INSERT INTO inbox (consumer, event_id, processed_at) VALUES (%(consumer)s, %(event_id)s, "
    "%(at)s) ON CONFLICT DO NOTHING RETURNING event_id"
)
# The claim and erasure check (migration 0014), for a statement of the caller's to embed; its
# parameters are ``claim_params``.
CLAIM_CALL = (
    "dearmp_claim(%(claim_consumer)s, %(claim_event_id)s, %(claim_erased)s, %(claim_key)s, "
    "%(claim_signed_at)s)"
)
Claimed = Literal["claimed", "duplicate", "erased"]


def claim(conn: Connection, consumer: str, event_id: uuid.UUID) -> bool:
    """Record ``event_id`` as processed by ``consumer``; False if it already was."""
    params = {"consumer": consumer, "event_id": event_id, "at": datetime.now(UTC)}
    return conn.exec_driver_sql(_CLAIM, params).first() is not None


def claim_checked(conn: Connection, params: dict[str, object]) -> Claimed:
    """``claim``, and then (once claimed) whether the event is about a signature its supporter
    has asked to be erased since (``shared.erased``: it waits for an erasure of theirs in
    progress): one statement (the ``dearmp_claim`` function, migration 0014) for the three.
    ``params`` from ``claim_params``."""
    return conn.exec_driver_sql(f"SELECT {CLAIM_CALL}", params).scalar_one()  # type: ignore[no-any-return]


def claim_params(
    consumer: str,
    event_id: uuid.UUID,
    erased: sa.Table | None = None,
    key: str | None = None,
    signed_at: datetime | None = None,
) -> dict[str, object]:
    """``CLAIM_CALL``'s parameters: the event, and the erased list to look in for the supporter
    named by ``key`` (none: the claim alone)."""
    return {
        "claim_consumer": consumer,
        "claim_event_id": event_id,
        "claim_erased": erased.name if erased is not None else None,
        "claim_key": key,
        "claim_signed_at": signed_at,
    }


def already_processed(conn: Connection, consumer: str, event_id: uuid.UUID) -> bool:
    stmt = sa.select(inbox.c.event_id).where(
        inbox.c.consumer == consumer, inbox.c.event_id == event_id
    )
    return conn.execute(stmt).first() is not None


def prune(conn: Connection, older_than: datetime, batch: int = 5000) -> int:
    """Forget handled events older than ``older_than`` (``DEARMP_INBOX_RETENTION_DAYS``): a
    redelivery that late is not expected (retries give up within hours; a dead letter replayed
    after that is handled again, and every effect has its own guard as well). Returns how many."""
    doomed = (
        sa.select(inbox.c.consumer, inbox.c.event_id)
        .where(inbox.c.processed_at < older_than)
        .limit(batch)
    )
    return conn.execute(
        inbox.delete().where(sa.tuple_(inbox.c.consumer, inbox.c.event_id).in_(doomed))
    ).rowcount
