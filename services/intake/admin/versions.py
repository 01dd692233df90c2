"""A campaign's versions: opening, pausing and closing it (each a new version, as any change),
and the history of what it said, with how many letters went out with each version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from services.mailer.reports import letters_by_version
from shared.campaigns import Campaign, campaign_problems, campaign_version
from shared.reference import campaign_versions

ACTIONS = ("open", "pause", "close")


def with_status(campaign: Campaign, action: str, now: datetime | None = None) -> Campaign:
    """The campaign opened (now: an opening date still to come and a closing date passed are
    cleared), paused, or closed (now). ``ValueError`` says why it cannot be saved as it is."""
    now = now or datetime.now(UTC)
    data = campaign.model_dump(exclude={"organisation"})
    opens_at, closes_at = campaign.opens_at, campaign.closes_at
    if action == "open":
        data["open"] = True
        data["opens_at"] = None if opens_at and opens_at > now else opens_at
        data["closes_at"] = None if closes_at and closes_at <= now else closes_at
    elif action == "pause":
        data["open"] = False
    elif action == "close":
        data["closes_at"] = now
        data["opens_at"] = None if opens_at and opens_at >= now else opens_at
    else:
        raise ValueError(f"no such action: {action}")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:  # stored before a rule it breaks: say which, as a file would
        where, what = campaign_problems(exc)[0]
        raise ValueError(f"{where}: {what}. Edit the campaign to fix it first.") from None


@dataclass(frozen=True)
class Version:
    number: int
    saved_at: datetime
    saved_by: str
    letters: int  # letters to targets written from it


def history(conn: Connection, slug: str) -> list[Version]:
    """Every saved version, newest first."""
    sent = letters_by_version(conn, campaign=slug)
    rows = conn.execute(
        sa.select(
            campaign_versions.c.version, campaign_versions.c.saved_at, campaign_versions.c.saved_by
        )
        .where(campaign_versions.c.campaign == slug)
        .order_by(campaign_versions.c.version.desc())
    ).all()
    return [Version(r.version, r.saved_at, r.saved_by, sent.get(r.version, 0)) for r in rows]


def one(conn: Connection, slug: str, number: int) -> Campaign | None:
    return campaign_version(conn, slug, number)
