"""Publishing a campaign update: the one function the staff pages and the CLI both call.

``publish_update`` inserts the campaign's next "Update #N" and, when it is to be emailed, stages
``update.published`` in the outbox in the same transaction: the update and the event that makes
the updates service fan it out commit together or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import outbox
from shared.messages import UpdatePublished
from shared.reference import campaign_updates, campaigns

TITLE_MAX = 200
BODY_MAX = 20_000


class PublishError(ValueError):
    """The update cannot be published as it is; the message says why, for staff."""


def check_update(title: str, body: str) -> dict[str, str]:
    """Field errors for a draft update ({} if it can be published)."""
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = "Enter a title"
    elif len(title) > TITLE_MAX:
        errors["title"] = f"The title must be {TITLE_MAX} characters or fewer"
    if not body.strip():
        errors["body"] = "Enter the update"
    elif len(body) > BODY_MAX:
        errors["body"] = f"The update must be {BODY_MAX:,} characters or fewer"
    return errors


def next_number(conn: Connection, slug: str) -> int:
    latest = conn.execute(
        sa.select(sa.func.max(campaign_updates.c.number)).where(campaign_updates.c.campaign == slug)
    ).scalar_one()
    return int(latest or 0) + 1


def publish_update(
    conn: Connection,
    slug: str,
    title: str,
    body: str,
    email_subscribers: bool,
    *,
    dedupe_window: timedelta | None = None,
) -> int:
    """Publish the campaign's next update in the caller's transaction; return its number.

    With ``dedupe_window``, an identical update published that recently is not published again
    (a double-clicked Publish button): its number is returned instead.
    """
    title, body = title.strip(), body.strip()
    errors = check_update(title, body)
    if errors:
        raise PublishError("; ".join(errors.values()))
    if conn.execute(sa.select(campaigns.c.slug).where(campaigns.c.slug == slug)).first() is None:
        raise PublishError(f"there is no campaign {slug!r}")
    # One publisher at a time per campaign (any replica), so numbers never collide.
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"updates:{slug}"))))
    now = datetime.now(UTC)
    if dedupe_window is not None:
        same = conn.execute(
            sa.select(campaign_updates.c.number).where(
                campaign_updates.c.campaign == slug,
                campaign_updates.c.title == title,
                campaign_updates.c.body == body,
                campaign_updates.c.emailed == email_subscribers,
                campaign_updates.c.published_at > now - dedupe_window,
            )
        ).first()
        if same is not None:
            return int(same.number)
    number = next_number(conn, slug)
    update_id = conn.execute(
        campaign_updates.insert()
        .values(
            campaign=slug,
            number=number,
            title=title,
            body=body,
            published_at=now,
            emailed=email_subscribers,
        )
        .returning(campaign_updates.c.id)
    ).scalar_one()
    if email_subscribers:
        outbox.add(
            conn,
            UpdatePublished(campaign=slug, update_number=number, title=title),
            correlation_id=f"update-{update_id}",
        )
    return number
