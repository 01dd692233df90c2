"""What the staff pages show, read from Postgres. Staff pages are few: aggregates run on read.

Letters are the mailer's, read through ``services.mailer.reports`` (as ``dearmp status`` does);
signatures are counted by ``services.intake.reports``, which ``dearmp status`` uses too, so the two
always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.models import help_requests, signatures
from services.intake.reports import SignatureCounts, signature_counts
from services.mailer.reports import emails_by_audience as mailer_emails_by_audience
from services.mailer.reports import maybe_duplicated as mailer_maybe_duplicated
from shared.reference import campaign_updates, campaigns
from shared.states import SignatureStatus

# The journey of a signature, in order, as the dashboard's columns name it.
STATUS_LABELS: dict[SignatureStatus, str] = {
    SignatureStatus.PENDING: "Waiting to confirm",
    SignatureStatus.CONFIRMED: "Finding the target",
    SignatureStatus.RESOLVED: "Letter on its way",
    SignatureStatus.UNRESOLVABLE: "No target found",
    SignatureStatus.SENT: "Letter sent",
    SignatureStatus.FAILED: "Letter failed",
    SignatureStatus.ERASED: "Erased before confirming",
}


@dataclass
class CampaignSummary:
    slug: str
    title: str
    goal: int
    open: bool
    counts: SignatureCounts = field(default_factory=SignatureCounts)
    organisation: str = ""

    @property
    def by_status(self) -> dict[str, int]:
        return self.counts.by_status

    @property
    def confirmed(self) -> int:
        """Signatures that count towards the goal, as on the public page."""
        return self.counts.confirmed

    @property
    def percent(self) -> int:
        """Progress towards the goal, at most 100."""
        return min(100, self.share)

    @property
    def share(self) -> int:
        """Confirmed signatures as a percentage of the goal, past 100 once it is passed."""
        return round(100 * self.confirmed / self.goal) if self.goal else 0

    @property
    def passed(self) -> bool:
        """More confirmed signatures than the goal (as the public page says)."""
        return bool(self.goal) and self.confirmed > self.goal

    @property
    def reached(self) -> bool:
        """Exactly the goal."""
        return bool(self.goal) and self.confirmed == self.goal


def campaign_summaries(
    conn: Connection, slug: str | None = None, *, organisation: str | None = None
) -> list[CampaignSummary]:
    """Every campaign (or ``slug``), or only those of ``organisation``."""
    query = sa.select(
        campaigns.c.slug, campaigns.c.title, campaigns.c.definition, campaigns.c.organisation
    ).order_by(campaigns.c.slug)
    if slug is not None:
        query = query.where(campaigns.c.slug == slug)
    if organisation is not None:
        query = query.where(campaigns.c.organisation == organisation)
    rows = conn.execute(query).all()
    counts = signature_counts(conn, slug) if rows else {}
    return [
        CampaignSummary(
            row.slug,
            row.title,
            int(row.definition.get("goal") or 0),
            bool(row.definition.get("open", True)),
            counts.get(row.slug, SignatureCounts()),
            row.organisation,
        )
        for row in rows
    ]


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


def maybe_duplicated(conn: Connection, slug: str) -> int:
    """The campaign's emails handed to the server more than once (the recipient may have two)."""
    return mailer_maybe_duplicated(conn, campaign=slug)


def emails_by_audience(conn: Connection, slug: str) -> dict[str, dict[str, int]]:
    """The campaign's emails by state, apart for who they are for: letters to its targets,
    digests to MPs' offices, emails to supporters (``services.mailer.reports``)."""
    return mailer_emails_by_audience(conn, campaign=slug)


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
