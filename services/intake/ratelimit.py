"""Rate limits that hold across intake replicas: fixed windows counted in Postgres.

Keys are HMACs of the IP address or normalised email (never the value itself), so the table
holds no personal data. Expired windows are swept now and then by whichever request is there.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from shared.db import metadata

rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    # Counters need no crash safety: UNLOGGED skips the WAL, so a hit costs no disk flush.
    prefixes=["UNLOGGED"],
)


@dataclass(frozen=True)
class Limit:
    """``count`` hits per ``seconds``; parsed from "count/seconds" settings."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        count, _, seconds = text.partition("/")
        return cls(int(count), int(seconds or 60))


def limit_key(secret: str, kind: str, value: str) -> str:
    digest = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:40]}"


def hit(conn: Connection, key: str, limit: Limit, now: datetime | None = None) -> bool:
    """Count one hit; False when the key is over its limit for the current window."""
    now = now or datetime.now(UTC)
    epoch = int(now.timestamp())
    window = datetime.fromtimestamp(epoch - epoch % limit.seconds, UTC)
    upsert = insert(rate_limits).values(key=key, window_start=window, hits=1)
    upsert = upsert.on_conflict_do_update(
        index_elements=[rate_limits.c.key, rate_limits.c.window_start],
        set_={"hits": rate_limits.c.hits + 1},
    )
    hits = conn.execute(upsert.returning(rate_limits.c.hits)).scalar_one()
    if random.random() < 0.002:
        conn.execute(
            rate_limits.delete().where(rate_limits.c.window_start < now - timedelta(days=1))
        )
    return int(hits) <= limit.count
