"""Fan-out jobs: recording one when an update is published (its progress is read in reports.py).

A job is created in the transaction that handles ``update.published`` (with the inbox claim), so a
redelivered event finds it already there (one job per campaign and update number). Its counts are
written once per batch by the worker sending it (``fanout.py``), and recomputed from the
deliveries when it finishes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from services.updates.models import fanout_jobs, subscribers


def create_job(conn: Connection, campaign: str, update_number: int) -> bool:
    """Record the fan-out of update ``update_number`` to the campaign's current subscribers.
    False if it was already recorded."""
    now = datetime.now(UTC)
    upto, total = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.max(subscribers.c.id), 0),
            sa.func.count().filter(subscribers.c.subscribed),
        ).where(subscribers.c.campaign == campaign)
    ).one()
    created = conn.execute(
        insert(fanout_jobs)
        .values(
            campaign=campaign,
            update_number=update_number,
            status="running",
            cursor=0,
            upto=upto,
            total=total,
            retry_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_fanout_jobs_campaign_update")
        .returning(fanout_jobs.c.id)
    ).first()
    return created is not None
