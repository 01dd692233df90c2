"""What the updates service lets others read (intake's staff pages, ``dearmp updates publish``):
a fan-out's progress. Other services read the updates tables only through these functions."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.updates.models import fanout_jobs
from shared.db import plain


@dataclass(frozen=True)
class Progress:
    status: str  # running | waiting | done
    total: int
    sent: int
    skipped: int
    failed: int
    possible_duplicates: int
    last_error: str | None

    @property
    def handled(self) -> int:
        return self.sent + self.skipped + self.failed

    @property
    def done(self) -> bool:
        return self.status == "done"


def job_progress(conn: Connection, campaign: str, update_number: int) -> Progress | None:
    row = conn.execute(
        sa.select(
            fanout_jobs.c.status,
            fanout_jobs.c.total,
            fanout_jobs.c.sent,
            fanout_jobs.c.skipped,
            fanout_jobs.c.failed,
            fanout_jobs.c.possible_duplicates,
            fanout_jobs.c.last_error,
        ).where(fanout_jobs.c.campaign == campaign, fanout_jobs.c.update_number == update_number)
    ).first()
    return Progress(**row._mapping) if row is not None else None


def held_about(conn: Connection, email: str) -> dict[str, list[dict[str, object]]]:
    """Subject access: the (normalised) address's subscriptions, and each update emailed to it."""
    from services.updates.models import deliveries as update_deliveries
    from services.updates.models import fanout_jobs, subscribers

    subs = (
        conn.execute(sa.select(subscribers).where(subscribers.c.email_normalised == email))
        .mappings()
        .all()
    )
    ids = [s["id"] for s in subs]
    deliveries = conn.execute(
        sa.select(
            fanout_jobs.c.campaign,
            fanout_jobs.c.update_number,
            update_deliveries.c.state,
            update_deliveries.c.sent_at,
        )
        .join(fanout_jobs, fanout_jobs.c.id == update_deliveries.c.job_id)
        .where(update_deliveries.c.subscriber_id.in_(ids))
        .order_by(update_deliveries.c.id)
    ).mappings()
    return {
        "subscriptions": [plain(s) for s in subs],
        "update_emails": [plain(d) for d in deliveries],
    }
