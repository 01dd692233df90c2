"""CSV exports from a campaign's dashboard, streamed, and each one recorded.

- ``GET /admin/c/{slug}/exports/supporters.csv``: the campaign's confirmed supporters who ticked
  its organisation's own-list opt-in (migration 0013), with the wording they agreed to and when.
  Personal data leaving Dear MP: only the organisation's owners and editors, and platform
  operators (the router reads with ``Power.EDIT``; a viewer gets 403).
- ``GET /admin/c/{slug}/exports/constituencies.csv``: confirmed signatures per constituency with
  the MP its letters went to (the dashboard's query, ``constituency_counts``): any account that
  may read the campaign.

``web.guard`` runs first, as for every staff route: another organisation's campaign is "not
found". The rows are never held in memory: a server-side cursor (``yield_per``) feeds a generator
that writes a few hundred rows at a time into the response. Before the first byte, a
``staff_exports`` row records who asked for which export and when; when the last row has gone,
it gets the number of rows (a download cut off half way keeps ``rows`` NULL: "not finished").

A cell that starts with ``= + - @`` (or a tab or carriage return) is prefixed with ``'`` so a
spreadsheet shows it as text instead of running it as a formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Connection, Engine

from services.intake.admin.auth import StaffMember
from services.intake.admin.constituency_counts import seats_query
from services.intake.admin.models import staff_exports
from services.intake.admin.roles import Power
from services.intake.admin.web import NotFound, Staff, no_store, protected_router
from services.intake.deps import Engine as EngineDep
from services.intake.models import signatures
from shared.organisations import organisation_of

readers = protected_router()
# Supporters' names and addresses leave Dear MP: owners, editors and operators only.
editors = protected_router(reads=Power.EDIT, changes=Power.EDIT)
routers = [readers, editors]

SUPPORTERS, CONSTITUENCIES = "supporters", "constituencies"
NAMES = {
    SUPPORTERS: "Supporters who opted in to the organisation's updates",
    CONSTITUENCIES: "Signatures per constituency, with the MP",
}
BATCH = 500  # rows fetched per round trip, and written per chunk of the response
RISKY = ("=", "+", "-", "@", "\t", "\r")
SHOWN = 20  # exports listed on the dashboard


def safe_cell(value: Any) -> Any:
    """The value for a CSV cell: text a spreadsheet would run as a formula is made plain text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value.startswith(RISKY):
        return "'" + value
    return value


def supporters_query(slug: str) -> sa.Select[Any]:
    s = signatures.c
    return (
        sa.select(
            s.first_name,
            s.last_name,
            s.email,
            s.postcode,
            s.constituency_name,
            s.language,
            s.created_at,
            s.confirmed_at,
            s.org_opt_in_wording,
            s.org_opt_in_at,
        )
        .where(
            s.campaign == slug,
            s.confirmed_at.is_not(None),
            s.org_opt_in_at.is_not(None),
            s.supporter_key.is_not(None),  # erased supporters have none
        )
        .order_by(s.confirmed_at, s.id)
    )


SUPPORTER_HEADER = [
    "first_name",
    "last_name",
    "email",
    "postcode",
    "constituency",
    "language",
    "signed_at_utc",
    "confirmed_at_utc",
    "opt_in_wording",
    "opted_in_at_utc",
]


def constituencies_query(slug: str) -> sa.Select[Any]:
    """The dashboard's constituency table (``constituency_counts``), most signatures first."""
    seats = seats_query(slug).subquery()
    return sa.select(seats.c.code, seats.c.name, seats.c.mp, seats.c.party, seats.c.n).order_by(
        seats.c.n.desc(), seats.c.code
    )


CONSTITUENCY_HEADER = ["constituency_code", "constituency", "mp", "party", "signatures"]


def start_export(engine: Engine, slug: str, kind: str, member: StaffMember) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                staff_exports.insert()
                .values(
                    campaign=slug,
                    kind=kind,
                    staff_id=member.id,
                    staff_email=member.email,
                    created_at=datetime.now(UTC),
                )
                .returning(staff_exports.c.id)
            ).scalar_one()
        )


def finish_export(engine: Engine, export_id: int, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            staff_exports.update()
            .where(staff_exports.c.id == export_id)
            .values(rows=rows, finished_at=datetime.now(UTC))
        )


def csv_stream(
    engine: Engine, query: sa.Select[Any], header: Sequence[str], export_id: int
) -> Iterator[str]:
    """The CSV, a chunk of ``BATCH`` rows at a time, read through a server-side cursor; the
    export's row count is recorded after the last row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield "\ufeff" + buffer.getvalue()  # the BOM: spreadsheets then read the names as UTF-8
    count = 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=BATCH).execute(query)
        for chunk in result.partitions():
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([safe_cell(v) for v in row] for row in chunk)
            count += len(chunk)
            yield buffer.getvalue()
    finish_export(engine, export_id, count)


def _download(
    engine: Engine,
    member: StaffMember,
    slug: str,
    kind: str,
    query: sa.Select[Any],
    header: Sequence[str],
) -> StreamingResponse:
    with engine.connect() as conn:
        if organisation_of(conn, slug) is None:
            raise NotFound()
    export_id = start_export(engine, slug, kind, member)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    response = StreamingResponse(
        csv_stream(engine, query, header, export_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{kind}-{day}.csv"'},
    )
    no_store(response)
    return response


@editors.get("/admin/c/{slug}/exports/supporters.csv")
def supporters_csv(slug: str, engine: EngineDep, member: Staff) -> StreamingResponse:
    return _download(engine, member, slug, SUPPORTERS, supporters_query(slug), SUPPORTER_HEADER)


@readers.get("/admin/c/{slug}/exports/constituencies.csv")
def constituencies_csv(slug: str, engine: EngineDep, member: Staff) -> StreamingResponse:
    return _download(
        engine, member, slug, CONSTITUENCIES, constituencies_query(slug), CONSTITUENCY_HEADER
    )


def recent_exports(conn: Connection, slug: str, *, limit: int = SHOWN) -> list[sa.Row[Any]]:
    """The campaign's latest exports, for the dashboard."""
    return list(
        conn.execute(
            sa.select(staff_exports)
            .where(staff_exports.c.campaign == slug)
            .order_by(staff_exports.c.created_at.desc(), staff_exports.c.id.desc())
            .limit(limit)
        )
    )
