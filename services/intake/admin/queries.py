"""What the staff pages show, read from Postgres. Staff pages are few: aggregates run on read.

Letters are the mailer's table; the staff pages only read it (as ``dearmp status`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.models import help_requests, signatures
from services.mailer.models import letters
from shared.reference import campaign_updates, campaigns

# The journey of a signature, in order, as intake records it.
STATUSES = ("pending", "confirmed", "resolved", "unresolvable", "letter_sent", "letter_failed")
LETTER_STATES = ("created", "sending", "sent", "failed")


@dataclass
class CampaignSummary:
    slug: str
    title: str
    goal: int
    open: bool
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def confirmed(self) -> int:
        """Signatures that count towards the goal: every status after pending."""
        return sum(n for status, n in self.by_status.items() if status != "pending")

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.confirmed / self.goal)) if self.goal else 0


def campaign_summaries(conn: Connection) -> list[CampaignSummary]:
    out = {
        row.slug: CampaignSummary(
            row.slug,
            row.title,
            int(row.definition.get("goal") or 0),
            bool(row.definition.get("open", True)),
        )
        for row in conn.execute(
            sa.select(campaigns.c.slug, campaigns.c.title, campaigns.c.definition).order_by(
                campaigns.c.slug
            )
        )
    }
    counts = conn.execute(
        sa.select(signatures.c.campaign, signatures.c.status, sa.func.count().label("n")).group_by(
            signatures.c.campaign, signatures.c.status
        )
    )
    for row in counts:
        if row.campaign in out:
            out[row.campaign].by_status[row.status] = row.n
    return list(out.values())


@dataclass(frozen=True)
class Hour:
    start: datetime  # UTC
    signed: int
    confirmed: int


def _per_hour(
    conn: Connection, slug: str, column: sa.Column, since: datetime
) -> dict[datetime, int]:  # type: ignore[type-arg]
    hour = sa.func.date_trunc("hour", sa.func.timezone("UTC", column)).label("hour")
    rows = conn.execute(
        sa.select(hour, sa.func.count().label("n"))
        .where(signatures.c.campaign == slug, column >= since)
        .group_by(hour)
    )
    return {row.hour.replace(tzinfo=UTC): row.n for row in rows}


def signatures_per_hour(
    conn: Connection, slug: str, *, hours: int = 48, now: datetime | None = None
) -> list[Hour]:
    """The last ``hours`` hours, oldest first, the current hour last: signatures received in each
    hour, and signatures confirmed in each hour."""
    now = now or datetime.now(UTC)
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    signed = _per_hour(conn, slug, signatures.c.created_at, first)
    confirmed = _per_hour(conn, slug, signatures.c.confirmed_at, first)
    starts = [first + timedelta(hours=i) for i in range(hours)]
    return [Hour(s, signed.get(s, 0), confirmed.get(s, 0)) for s in starts]


def letters_by_state(conn: Connection, slug: str) -> dict[str, int]:
    rows = conn.execute(
        sa.select(letters.c.state, sa.func.count().label("n"))
        .where(letters.c.campaign == slug)
        .group_by(letters.c.state)
    )
    found = {row.state: row.n for row in rows}
    return {state: found.pop(state, 0) for state in LETTER_STATES} | found


def constituency_counts(
    conn: Connection, slug: str, *, top: int = 20
) -> tuple[list[tuple[str, int]], int]:
    """(the ``top`` constituencies by confirmed signatures, how many confirmed signatures have no
    constituency yet)."""
    name = sa.func.coalesce(signatures.c.constituency_name, "")
    rows = conn.execute(
        sa.select(name.label("name"), sa.func.count().label("n"))
        .where(signatures.c.campaign == slug, signatures.c.confirmed_at.is_not(None))
        .group_by(name)
        .order_by(sa.desc("n"), name)
    ).all()
    unknown = sum(row.n for row in rows if not row.name)
    return [(row.name, row.n) for row in rows if row.name][:top], unknown


def open_help_requests(conn: Connection, slug: str, *, limit: int = 50) -> list[sa.Row]:  # type: ignore[type-arg]
    return list(
        conn.execute(
            sa.select(help_requests)
            .where(help_requests.c.campaign == slug, help_requests.c.handled_at.is_(None))
            .order_by(help_requests.c.created_at)
            .limit(limit)
        )
    )


def handled_help_count(conn: Connection, slug: str) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                help_requests.c.campaign == slug, help_requests.c.handled_at.is_not(None)
            )
        ).scalar_one()
    )


def mark_help_handled(conn: Connection, slug: str, request_id: int) -> bool:
    done = conn.execute(
        help_requests.update()
        .where(
            help_requests.c.id == request_id,
            help_requests.c.campaign == slug,
            help_requests.c.handled_at.is_(None),
        )
        .values(handled_at=datetime.now(UTC))
    )
    return bool(done.rowcount)


def published_updates(conn: Connection, slug: str) -> list[sa.Row]:  # type: ignore[type-arg]
    return list(
        conn.execute(
            sa.select(
                campaign_updates.c.number,
                campaign_updates.c.title,
                campaign_updates.c.published_at,
                campaign_updates.c.emailed,
            )
            .where(campaign_updates.c.campaign == slug)
            .order_by(campaign_updates.c.number.desc())
        )
    )
