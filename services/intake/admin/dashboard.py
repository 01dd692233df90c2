"""The campaign dashboard's reports: signatures per day, the confirmation rate, and confirmed
signatures per constituency (a sortable table, with the MP written to, and the hex map), read on request.

Staff pages are few and these are aggregates over one campaign's rows (``campaign`` leads the
signatures' indexes), so they run on read; nothing is counted on the signing path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.engine import Connection

from services.intake.admin import charts, exports, hexmap
from services.intake.admin.constituency_counts import seats_query
from services.intake.models import signatures

UK = ZoneInfo("Europe/London")
BLUE, GREEN = "#1d70b8", "#00703c"
# The constituency table's columns that sort, by the name the ``sort`` query parameter uses.
SORTS = {"name": "name", "mp": "mp", "signatures": "n"}
DEFAULT_SORT = ("signatures", "desc")


@dataclass(frozen=True)
class Day:
    day: date  # UK calendar day
    signed: int
    confirmed: int


def _per_day(conn: Connection, slug: str, column: Any, since: datetime) -> dict[date, int]:
    day = sa.func.date(sa.func.timezone("Europe/London", column)).label("day")
    rows = conn.execute(
        sa.select(day, sa.func.count().label("n"))
        .where(signatures.c.campaign == slug, column >= since)
        .group_by(day)
    )
    return {row.day: row.n for row in rows}


def signatures_per_day(
    conn: Connection, slug: str, *, days: int = 30, now: datetime | None = None
) -> list[Day]:
    """The last ``days`` UK days, oldest first, today last: received and confirmed in each."""
    today = (now or datetime.now(UTC)).astimezone(UK).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UK)
    signed = _per_day(conn, slug, signatures.c.created_at, since)
    confirmed = _per_day(conn, slug, signatures.c.confirmed_at, since)
    return [
        Day(d, signed.get(d, 0), confirmed.get(d, 0))
        for d in (first + timedelta(days=i) for i in range(days))
    ]


def days_chart(days: list[Day]) -> tuple[Markup, list[dict[str, Any]]]:
    """The chart and its table rows."""
    slots = [f"{d.day:%a} {d.day.day} {d.day:%b %Y}" for d in days]
    axis = [
        f"{d.day.day} {d.day:%b}" if i % 5 == (len(days) - 1) % 5 else ""
        for i, d in enumerate(days)
    ]
    signed = sum(d.signed for d in days)
    confirmed = sum(d.confirmed for d in days)
    busiest = max(days, key=lambda d: d.signed) if signed else None
    desc = (
        f"Signatures received and confirmed on each of the last {len(days)} days, UK time: "
        f"{signed:,} received and {confirmed:,} confirmed in all."
        + (
            f" The busiest day was {busiest.day:%A} {busiest.day.day} {busiest.day:%B}, with "
            f"{busiest.signed:,} received."
            if busiest
            else ""
        )
    )
    chart = charts.column_chart(
        chart_id="days-chart",
        title=f"Signatures per day, last {len(days)} days",
        desc=desc,
        slots=slots,
        axis_labels=axis,
        series=[
            charts.Series("Received", BLUE, [d.signed for d in days]),
            charts.Series("Confirmed", GREEN, [d.confirmed for d in days]),
        ],
    )
    rows = [
        {"day": s, "signed": d.signed, "confirmed": d.confirmed}
        for s, d in zip(slots, days, strict=True)
    ]
    return chart, rows


@dataclass(frozen=True)
class Confirmation:
    received: int  # every signature the campaign holds (pending, confirmed, erased)
    confirmed: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.confirmed / self.received, 1) if self.received else None


def confirmation(conn: Connection, slug: str) -> Confirmation:
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.count(signatures.c.confirmed_at)).where(
            signatures.c.campaign == slug
        )
    ).one()
    return Confirmation(int(row[0]), int(row[1]))


@dataclass(frozen=True)
class Seat:
    code: str
    name: str
    mp: str  # "" when the seat is vacant or the MP is not known
    party: str
    signatures: int
    listed: bool = True  # the MP data has the seat (vacant when ``mp`` is "")


def seats(conn: Connection, slug: str) -> list[Seat]:
    """Every constituency with confirmed signatures, by code, with the MP its letters went to
    (``constituency_counts``: the same query as the constituency CSV)."""
    rows = conn.execute(seats_query(slug))
    return [Seat(r.code, r.name, r.mp, r.party, int(r.n), bool(r.listed)) for r in rows]


def sort_order(sort: str | None, order: str | None) -> tuple[str, str]:
    """The table's sort from the query string; anything unknown is the default."""
    if sort not in SORTS:
        return DEFAULT_SORT
    return sort, ("asc" if order == "asc" else "desc" if order == "desc" else _natural(sort))


def _natural(sort: str) -> str:
    return "desc" if sort == "signatures" else "asc"


def sorted_seats(rows: list[Seat], sort: str, order: str) -> list[Seat]:
    by_name = sorted(rows, key=lambda r: (r.name.casefold(), r.code))
    if sort == "name":
        return by_name[::-1] if order == "desc" else by_name
    if sort == "mp":  # stable: one MP's seats (or the vacant ones) stay in name order
        return sorted(by_name, key=lambda r: r.mp.casefold(), reverse=order == "desc")
    return sorted(by_name, key=lambda r: r.signatures, reverse=order == "desc")


def sort_links(slug: str, sort: str, order: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (the other way round when it is the
    sort already) and its ``aria-sort``."""
    out = {}
    for column in SORTS:
        if column == sort:
            flip = "asc" if order == "desc" else "desc"
            aria = "ascending" if order == "asc" else "descending"
        else:
            flip, aria = _natural(column), "none"
        out[column] = {
            "href": f"/admin/c/{slug}?sort={column}&order={flip}#constituencies",
            "aria": aria,
            "next": "ascending" if flip == "asc" else "descending",
        }
    return out


@dataclass(frozen=True)
class Source:
    source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    received: int
    confirmed: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.confirmed / self.received, 1) if self.received else None


def sources(conn: Connection, slug: str, *, top: int = 50) -> list[Source]:
    """Signatures by the tags on the link they came from (``?source=``, ``utm_*``), most first;
    signatures without any tag are one row of NULLs."""
    s = signatures.c
    tags = (s.source, s.utm_source, s.utm_medium, s.utm_campaign)
    received = sa.func.count().label("received")
    rows = conn.execute(
        sa.select(*tags, received, sa.func.count(s.confirmed_at).label("confirmed"))
        .where(s.campaign == slug)
        .group_by(*tags)
        .order_by(received.desc(), *(sa.func.coalesce(t, "") for t in tags))
        .limit(top)
    )
    return [Source(*row) for row in rows]


def unplaced(conn: Connection, slug: str) -> int:
    """Confirmed signatures with no constituency yet (being resolved, unresolvable, fixed target)."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                signatures.c.campaign == slug,
                signatures.c.confirmed_at.is_not(None),
                signatures.c.constituency_code.is_(None),
            )
        ).scalar_one()
    )


def reports(
    conn: Connection, slug: str, *, sort: str | None = None, order: str | None = None
) -> dict[str, Any]:
    """Everything the dashboard's report sections show, as template variables."""
    days_svg, day_rows = days_chart(signatures_per_day(conn, slug))
    column, direction = sort_order(sort, order)
    rows = seats(conn, slug)
    return {
        "days_chart": days_svg,
        "day_rows": day_rows,
        "confirmation": confirmation(conn, slug),
        "seats": sorted_seats(rows, column, direction),
        "seat_sort": (column, direction),
        "seat_links": sort_links(slug, column, direction),
        "seats_unplaced": unplaced(conn, slug),
        "seat_map": hexmap.hex_map({r.code: r.signatures for r in rows}),
        "sources": sources(conn, slug),
        "exports": exports.recent_exports(conn, slug),
        "export_names": exports.NAMES,
    }
