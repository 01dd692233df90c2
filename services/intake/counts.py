"""Signature counts: aggregated on read and cached for a few seconds, per process.

There is no counter row to update per signature (a hot row like that took the UK petitions site
down in 2019). Each replica runs at most one aggregate query per campaign per ``TTL`` seconds, so
counts are at most that stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.intake.models import signatures
from shared.ttl_cache import TtlCache

TTL = 3.0


@dataclass
class Counts:
    total: int
    by_constituency: list[dict[str, object]] = field(default_factory=list)
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))


# Keyed by database and campaign (one process may serve more than one database: the tests do);
# one query per campaign at a time in this process.
_cache: TtlCache[tuple[object, str], Counts] = TtlCache(TTL, single_flight=True)


def campaign_counts(engine: Engine, slug: str) -> Counts:
    # A URL is hashable: no rendering on every page.
    return _cache.get((engine.url, slug), lambda: _count(engine, slug))


def _count(engine: Engine, slug: str) -> Counts:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                signatures.c.constituency_code,
                signatures.c.constituency_name,
                sa.func.count().label("n"),
            )
            .where(signatures.c.campaign == slug, signatures.c.confirmed_at.is_not(None))
            .group_by(signatures.c.constituency_code, signatures.c.constituency_name)
        ).all()
    return Counts(
        total=sum(r.n for r in rows),
        by_constituency=sorted(
            (
                {"code": r.constituency_code, "name": r.constituency_name, "count": r.n}
                for r in rows
                if r.constituency_code
            ),
            key=lambda c: (-int(c["count"]), str(c["name"])),  # type: ignore[call-overload]
        ),
    )
