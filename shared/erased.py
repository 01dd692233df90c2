"""Erased supporters, remembered so that a late event cannot bring their data back.

An event may reach a service after the supporter's erasure request did: it sat in a retry queue,
or in a dead-letter queue until ``dearmp dlq replay``. Each service that stores personal data from
events therefore keeps its own list of erased supporters (by keyed hash only,
``shared.supporters.supporter_key``; the address itself is never kept), written by its erasure
handler and read before it stores anything for a supporter: an erased one's event is consumed and
nothing is stored. The list is per service (``erased_supporters_table``), as each service writes
only its own tables; the shape and the rules are here, once.

Both sides take the same transaction-level advisory lock on the key first. An event handled at
the moment the request is handled is then either committed before the erasure (which removes what
it stored) or sees the key and stores nothing.

``erased_at`` is when the erasure was asked for (the request's ``occurred_at``, the same in every
service). Only signatures made before it are refused (``Supporter.signed_at``); the person may
sign again later, as anyone may, and that signature goes through normally. An event that does not
say when its signature was made (``signed_at`` None, from before the field existed) is refused.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from shared.db import metadata


def erased_supporters_table(name: str) -> sa.Table:
    """One service's list of erased supporters (declared in that service's models)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("supporter_key", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def _wait_for_erasure_in_progress(conn: Connection, key: str) -> None:
    # Held to the end of the caller's transaction. Two keys sharing a hash only wait for each other.
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"erased:{key}"))))


def remember(conn: Connection, table: sa.Table, key: str, asked_at: datetime) -> None:
    """Remember the supporter as erased as of ``asked_at`` (when the erasure was asked for), in
    the transaction that removes their data (call this before removing it). Idempotent; a later
    erasure of the same person moves the time on."""
    _wait_for_erasure_in_progress(conn, key)
    stmt = insert(table).values(supporter_key=key, erased_at=asked_at)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.supporter_key],
            set_={"erased_at": sa.func.greatest(table.c.erased_at, stmt.excluded.erased_at)},
        )
    )


def is_erased(
    conn: Connection,
    table: sa.Table,
    key: str,
    signed_at: datetime | None = None,
    *,
    wait: bool = True,
) -> bool:
    """Whether a signature made at ``signed_at`` belongs to an erasure (its supporter asked to be
    erased after signing it); call it in the transaction that would store their data. It waits
    for an erasure of theirs in progress to commit; ``wait=False`` is a quicker look for outside
    that transaction (to skip work early), not a guarantee."""
    if wait:
        _wait_for_erasure_in_progress(conn, key)
    erased_at = conn.execute(
        sa.select(table.c.erased_at).where(table.c.supporter_key == key)
    ).scalar()
    return refused(erased_at, signed_at)


def refused(erased_at: datetime | None, signed_at: datetime | None) -> bool:
    """Whether a signature made at ``signed_at`` falls under an erasure asked for at
    ``erased_at`` (None: the supporter was never erased)."""
    return erased_at is not None and (signed_at is None or signed_at <= erased_at)
