"""What the updates service lets others read (intake's staff pages, ``dearmp updates publish``):
a fan-out's progress, an organisation's webhook activity. Other services read the updates tables
only through these functions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.updates.models import fanout_jobs, subscribers
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


def webhooks_held_about(conn: Connection, key: str) -> dict[str, list[dict[str, object]]]:
    """Subject access: the webhook deliveries about the person (by keyed hash), where each went
    and, while kept, what it said."""
    from services.updates.models import webhook_deliveries as d
    from shared.reference import webhook_endpoints as e

    rows = conn.execute(
        sa.select(
            d.c.campaign,
            d.c.signature_id,
            d.c.event_type,
            d.c.event_id,
            e.c.organisation,
            e.c.url.label("endpoint"),
            d.c.state,
            d.c.attempts,
            d.c.created_at,
            d.c.finished_at,
            d.c.body,
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.supporter_key == key)
        .order_by(d.c.id)
    ).mappings()
    return {
        "webhook_deliveries": [
            plain(
                {
                    **r,
                    "signature_id": str(r["signature_id"]),
                    "event_id": str(r["event_id"]),
                    "body": bytes(r["body"]).decode() if r["body"] is not None else None,
                }
            )
            for r in rows
        ]
    }


@dataclass(frozen=True)
class WebhookActivity:
    """What ``/admin/webhooks`` shows: the latest deliveries and failed attempts (newest first)
    and, per endpoint id, how many deliveries are in each state. Never a body."""

    deliveries: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    counts: dict[int, dict[str, int]]


def webhook_activity(
    conn: Connection, organisation: str | None, limit: int = 50
) -> WebhookActivity:
    """The organisation's webhook activity (None: every organisation's)."""
    from services.updates.models import webhook_deliveries as d
    from services.updates.models import webhook_failures as f
    from shared.reference import webhook_endpoints as e

    mine = sa.true() if organisation is None else e.c.organisation == organisation
    deliveries = conn.execute(
        sa.select(
            d.c.id,
            d.c.endpoint_id,
            d.c.event_id,
            d.c.event_type,
            d.c.campaign,
            d.c.state,
            d.c.attempts,
            d.c.created_at,
            d.c.next_attempt_at,
            d.c.finished_at,
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .where(mine)
        .order_by(d.c.id.desc())
        .limit(limit)
    ).mappings()
    failures = conn.execute(
        sa.select(
            f.c.at,
            f.c.delivery_id,
            f.c.attempt,
            f.c.status_code,
            f.c.error,
            f.c.gave_up,
            d.c.endpoint_id,
            d.c.event_id,
            d.c.event_type,
        )
        .join(d, d.c.id == f.c.delivery_id)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(mine)
        .order_by(f.c.id.desc())
        .limit(limit)
    ).mappings()
    counts: dict[int, dict[str, int]] = {}
    for endpoint_id, state, n in conn.execute(
        sa.select(d.c.endpoint_id, d.c.state, sa.func.count())
        .join(e, e.c.id == d.c.endpoint_id)
        .where(mine)
        .group_by(d.c.endpoint_id, d.c.state)
    ):
        counts.setdefault(endpoint_id, {})[state] = n
    return WebhookActivity([dict(r) for r in deliveries], [dict(r) for r in failures], counts)


def webhook_states(conn: Connection) -> dict[str, int]:
    """Every organisation's webhook deliveries by state (``dearmp status``)."""
    from services.updates.models import webhook_deliveries as d

    rows = conn.execute(sa.select(d.c.state, sa.func.count()).group_by(d.c.state))
    return {state: n for state, n in rows}


def unsubscribed(conn: Connection, signature_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these signatures' supporters left the campaign's emails (or every campaign's):
    the mailer sends them no "Did your MP reply?" question. A supporter who never opted in to
    updates has no row, and is not counted as having left."""
    rows = conn.execute(
        sa.select(subscribers.c.signature_id).where(
            subscribers.c.signature_id.in_(signature_ids), sa.not_(subscribers.c.subscribed)
        )
    )
    return {row.signature_id for row in rows}
