"""Intake's asynchronous database access, for the hot path of a viral petition (signing).

The rest of intake uses the synchronous SQLAlchemy engine from a thread pool. Signing instead
runs on the event loop with psycopg's async connections: no thread hand-off, no pool checkout
per statement, statements prepared by psycopg after their first few uses. Under ``dearmp serve
intake`` a pool is opened with the app (``open``/``close`` in its lifespan); where nothing
opened it (an app driven by a test client, whose event loop may change from request to
request), each use opens its own connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared.campaigns import SLUG_RE, Campaign, parse_stored, parsed_as_of
from shared.metrics import WRITE_BATCH

# What "the database cannot be reached" looks like on this path (answered 503, like the
# synchronous engine's OperationalError).
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)

# A campaign is re-checked (its updated_at) at most this often per process: closing or editing a
# campaign reaches signing within a second, and a petition going viral asks once a second.
CAMPAIGN_TTL = 1.0

# Group commit: statements that arrive while earlier ones are being written are written together,
# in one transaction and one round trip (pipeline mode), by at most WRITERS tasks per process.
WRITERS = 2
BATCH_MAX = 64

Row = tuple[Any, ...]


class IntakeDb:
    def __init__(self, database_url: str, *, pool_size: int = 10) -> None:
        url = sa.make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._campaigns: dict[str, tuple[float, Campaign]] = {}
        self._waiting: list[tuple[str, dict[str, object], asyncio.Future[Row | None]]] = []
        self._writers: set[asyncio.Task[None]] = set()  # kept: the loop holds tasks weakly

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
        """The campaign as stored, at most CAMPAIGN_TTL old (``parse_stored`` parses each
        version once)."""
        if not SLUG_RE.match(slug):
            return None
        now = time.monotonic()
        cached = self._campaigns.get(slug)
        if cached and now - cached[0] < CAMPAIGN_TTL:
            return cached[1]
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT definition, updated_at, version FROM campaigns WHERE slug = %s", (slug,)
            )
            row = await cur.fetchone()
        if row is None:
            self._campaigns.pop(slug, None)
            return None
        campaign = parse_stored(slug, row[1], row[0], row[2])
        self._campaigns[slug] = (now, campaign)
        return campaign

    async def campaign_as_of(self, slug: str, updated_at: object) -> Campaign | None:
        """The campaign, when the caller has read its ``updated_at`` with the row it needs it
        for: parsed already in this process, no statement; else read (the cached one may be
        older)."""
        parsed = parsed_as_of(slug, updated_at)
        if parsed is not None:
            return parsed
        self._campaigns.pop(slug, None)
        return await self.campaign(slug)

    async def read_one(self, sql: str, params: dict[str, object]) -> Any:
        """The first row of a read (attributes by column name), None if none: autocommit, one
        round trip, on the event loop."""
        async with self.connection() as conn:
            cur = conn.cursor(row_factory=namedtuple_row)
            await cur.execute(sql, params)
            return await cur.fetchone()

    async def read_all(self, sql: str, params: dict[str, object]) -> list[Any]:
        """Every row of a read (attributes by column name), as ``read_one``."""
        async with self.connection() as conn:
            cur = conn.cursor(row_factory=namedtuple_row)
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def write(self, sql: str, params: dict[str, object]) -> Row | None:
        """Run one data-changing statement and return its first row. Statements from requests
        that arrive together share a transaction (one commit, one disk flush, one round trip):
        a petition going viral costs Postgres a fraction of a commit per signature. Under light
        load a statement is written at once, alone."""
        done: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((sql, params, done))
        if len(self._writers) < WRITERS:
            self._writers.add(asyncio.create_task(self._write_waiting()))
        return await done

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH_MAX], self._waiting[BATCH_MAX:]
                WRITE_BATCH.observe(len(batch))
                rows: Sequence[Row | None | BaseException]
                try:
                    rows = await self._write_together(batch)
                except UNAVAILABLE as exc:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                except psycopg.Error:
                    rows = await self._write_alone(batch)  # one bad statement fails only itself
                for (_, _, done), row in zip(batch, rows, strict=True):
                    if done.done():
                        continue  # the request was cancelled (client went away)
                    if isinstance(row, BaseException):
                        done.set_exception(row)
                    else:
                        done.set_result(row)
        finally:
            # At once, not in a done callback: a statement queued meanwhile must see the slot.
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _write_together(
        self, batch: Sequence[tuple[str, dict[str, object], object]]
    ) -> list[Row | None | BaseException]:
        if len(batch) == 1:  # alone: in autocommit, no BEGIN and COMMIT round trips
            return await self._write_alone(batch)
        rows: list[Row | None | BaseException] = []
        async with self.connection() as conn, conn.transaction(), conn.pipeline() as pipeline:
            cursors = [await conn.execute(sql, params) for sql, params, _ in batch]
            await pipeline.sync()  # every result is in: each cursor knows if it has rows
            for cur in cursors:
                rows.append(await cur.fetchone() if cur.description else None)
        return rows

    async def _write_alone(
        self, batch: Sequence[tuple[str, dict[str, object], object]]
    ) -> list[Row | None | BaseException]:
        """Each statement on its own (autocommit); a failed one's error in its place."""
        rows: list[Row | None | BaseException] = []
        for sql, params, _ in batch:
            try:
                async with self.connection() as conn:
                    cur = await conn.execute(sql, params)
                    rows.append(await cur.fetchone() if cur.description else None)
            except psycopg.Error as exc:
                rows.append(exc)
        return rows
