"""Intake's group commit (services.intake.db.IntakeDb.write) against a real Postgres: statements
that arrive together are written together, each gets its own answer, one bad statement fails
only itself, and an unreachable database fails every waiting statement with a clear error."""

from __future__ import annotations

import asyncio

import psycopg

from services.intake.db import UNAVAILABLE, IntakeDb
from shared.metrics import WRITE_BATCH


def _batches() -> tuple[float, float]:
    """(batches written, statements written) so far in this process."""
    samples = {s.name: s.value for s in WRITE_BATCH.collect()[0].samples}
    return samples["dearmp_intake_write_batch_size_count"], samples[
        "dearmp_intake_write_batch_size_sum"
    ]


async def _with_pool(url: str, work):  # type: ignore[no-untyped-def]
    db = IntakeDb(url, pool_size=4)
    await db.open()
    try:
        return await work(db)
    finally:
        await db.close()


def test_statements_arriving_together_share_a_commit_and_keep_their_answers(
    database_url: str,
) -> None:
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE TABLE tally (n int PRIMARY KEY)")
    insert = "INSERT INTO tally (n) VALUES (%(n)s) ON CONFLICT DO NOTHING RETURNING n * 10"
    before = _batches()

    async def work(db: IntakeDb) -> list[object]:
        return await asyncio.gather(*(db.write(insert, {"n": n % 150}) for n in range(200)))

    rows = asyncio.run(_with_pool(database_url, work))
    # Each statement's own first row: n * 10, or None once n was already stored.
    assert rows[:150] == [(n * 10,) for n in range(150)]
    assert rows[150:] == [None] * 50
    batches, statements = (a - b for a, b in zip(_batches(), before, strict=True))
    assert statements == 200
    assert batches < 50, "concurrent statements were written in shared transactions"
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM tally").fetchone() == (150,)


def test_one_bad_statement_fails_only_itself(database_url: str) -> None:
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE TABLE parts (n int PRIMARY KEY)")

    async def work(db: IntakeDb) -> list[object]:
        return await asyncio.gather(
            *(
                db.write("INSERT INTO parts VALUES (100 / %(n)s) RETURNING n", {"n": n})
                for n in (1, 0, 2, 3)
            ),
            return_exceptions=True,
        )

    first, bad, *rest = asyncio.run(_with_pool(database_url, work))
    assert isinstance(bad, psycopg.errors.DivisionByZero)
    assert [first, *rest] == [(100,), (50,), (33,)]
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM parts").fetchone() == (3,)


def test_an_unreachable_database_fails_every_waiting_statement() -> None:
    async def work(db: IntakeDb) -> list[object]:
        return await asyncio.gather(
            *(db.write("SELECT 1", {}) for _ in range(3)), return_exceptions=True
        )

    db = IntakeDb("postgresql://postgres@127.0.0.1:1/none", pool_size=2)
    results = asyncio.run(work(db))  # no pool opened: each batch connects on its own
    assert len(results) == 3 and all(isinstance(r, UNAVAILABLE) for r in results)
