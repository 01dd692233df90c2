"""Intake's asynchronous database access, for the hot path of a viral petition (signing).

The rest of intake uses the synchronous SQLAlchemy engine from a thread pool. Signing instead
runs on the event loop with psycopg's async connections: no thread hand-off, no pool checkout
per statement, statements prepared by psycopg after their first few uses. Under ``dearmp serve
intake`` a pool is opened with the app (``open``/``close`` in its lifespan); where nothing
opened it (an app driven by a test client, whose event loop may change from request to
request), each use opens its own connection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import psycopg
import sqlalchemy as sa
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared.campaigns import SLUG_RE, Campaign, parse_stored

# What "the database cannot be reached" looks like on this path (answered 503, like the
# synchronous engine's OperationalError).
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)

# A campaign is re-checked (its updated_at) at most this often per process: closing or editing a
# campaign reaches signing within a second, and a petition going viral asks once a second.
CAMPAIGN_TTL = 1.0


class IntakeDb:
    def __init__(self, database_url: str, *, pool_size: int = 10) -> None:
        url = sa.make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._campaigns: dict[str, tuple[float, datetime, Campaign]] = {}

    async def open(self) -> None:
        """Open the pool without waiting for connections: the app starts even while Postgres
        is down (signing answers 503 until it is back)."""
        self._pool = AsyncConnectionPool(
            self.conninfo,
            min_size=min(2, self.pool_size),
            max_size=self.pool_size,
            kwargs={"autocommit": True},
            timeout=5.0,
            open=False,
        )
        await self._pool.open(wait=False)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """An autocommit connection: each statement commits on its own."""
        if self._pool is not None:
            async with self._pool.connection() as conn:
                yield conn
        else:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            async with conn:
                yield conn

    async def campaign(self, slug: str) -> Campaign | None:
        """The campaign as stored, at most CAMPAIGN_TTL old; parsed once per version."""
        if not SLUG_RE.match(slug):
            return None
        now = time.monotonic()
        cached = self._campaigns.get(slug)
        if cached and now - cached[0] < CAMPAIGN_TTL:
            return cached[2]
        async with self.connection() as conn:
            cur = await conn.execute("SELECT updated_at FROM campaigns WHERE slug = %s", (slug,))
            row = await cur.fetchone()
            if row is None:
                self._campaigns.pop(slug, None)
                return None
            if cached and cached[1] == row[0]:
                campaign = cached[2]
            else:
                cur = await conn.execute(
                    "SELECT definition, updated_at FROM campaigns WHERE slug = %s", (slug,)
                )
                found = await cur.fetchone()
                if found is None:
                    return None
                campaign = parse_stored(slug, found[1], found[0])
                row = (found[1],)
        self._campaigns[slug] = (now, row[0], campaign)
        return campaign
