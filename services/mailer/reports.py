"""What the mailer lets others read (``dearmp status``, ``dearmp letters failed``, intake's staff
pages, intake's thank-you page): emails by state, a letter waiting for its day, and the ones the
SMTP server refused for good, with the reason. Other services read the mailer's tables only
through these functions.

Addresses are masked (``j***@example.org``), in the recipient column and inside the reason, so
the listing can be pasted into a ticket.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by, array_agg
from sqlalchemy.engine import Connection, Engine

from services.mailer.delivery import TARGET_PURPOSES, UNWRITTEN
from services.mailer.models import bounced_addresses, bounces, letters, sending_pauses
from services.mailer.scheduled import Scheduled
from shared.db import plain
from shared.reference import mps
from shared.states import LetterState
from shared.supporters import mask_addresses, mask_email


def letters_by_state(
    conn: Connection, *, campaign: str | None = None, purpose: str | None = None
) -> dict[str, int]:
    """How many emails are in each state (every state named, 0 if none), for one campaign or
    all, for one purpose (``letter``: to the target) or every email."""
    query = sa.select(letters.c.state, sa.func.count().label("n")).group_by(letters.c.state)
    if campaign is not None:
        query = query.where(letters.c.campaign == campaign)
    if purpose is not None:
        query = query.where(letters.c.purpose == purpose)
    found = {row.state: row.n for row in conn.execute(query)}
    return {state.value: found.get(state.value, 0) for state in LetterState}


# Who an email is for, as the staff pages count them: the letters to a campaign's targets (each
# once, a letter that went inside a digest too), the digests that carried some of them, and every
# other email (confirmations, reminders, copies of the letter, notices, questions): supporters'.
LETTERS, DIGESTS, SUPPORTERS = "letters", "digests", "supporters"
DIGEST = "digest"


def emails_by_audience(conn: Connection, *, campaign: str) -> dict[str, dict[str, int]]:
    """A campaign's emails by who they are for (``LETTERS``, ``DIGESTS``, ``SUPPORTERS``) and by
    state (every state named, 0 if none)."""
    audience = sa.case(
        (letters.c.purpose == DIGEST, DIGESTS),
        (letters.c.purpose.in_(TARGET_PURPOSES), LETTERS),
        else_=SUPPORTERS,
    ).label("audience")
    query = (
        sa.select(audience, letters.c.state, sa.func.count().label("n"))
        .where(letters.c.campaign == campaign)
        .group_by(audience, letters.c.state)
    )
    out = {who: {state.value: 0 for state in LetterState} for who in (LETTERS, DIGESTS, SUPPORTERS)}
    for row in conn.execute(query):
        out[row.audience][row.state] = row.n
    return out


def letter_waiting(conn: Connection, signature_id: uuid.UUID) -> Scheduled | None:
    """When a signature's letter to its target waits for its day (``queued``, scheduled.py):
    in that day's digest, or sent on that day (the daily cap); None when it does not wait."""
    row = conn.execute(
        sa.select(letters.c.due_day, letters.c.digest_entry.is_not(None).label("digest")).where(
            letters.c.signature_id == signature_id,
            letters.c.purpose == "letter",
            letters.c.state == LetterState.QUEUED,
            letters.c.due_day.is_not(None),
        )
    ).first()
    return Scheduled(row.due_day, bool(row.digest)) if row else None


def letters_by_version(conn: Connection, *, campaign: str) -> dict[int | None, int]:
    """How many letters to targets were written from each version of the campaign
    (``campaign_versions``; None: sent before versions were recorded)."""
    query = (
        sa.select(letters.c.campaign_version, sa.func.count().label("n"))
        .where(letters.c.campaign == campaign, letters.c.purpose == "letter")
        .group_by(letters.c.campaign_version)
    )
    return {row.campaign_version: row.n for row in conn.execute(query)}


def sending_paused(conn: Connection) -> list[dict[str, Any]]:
    """Mailer processes that paused sending because the mail server refuses our set-up: who,
    why (addresses masked), since when and until when they wait before trying again."""
    rows = conn.execute(sa.select(sending_pauses).order_by(sending_pauses.c.since)).all()
    return [
        {
            "owner": row.owner,
            "reason": mask_addresses(row.reason),
            "since": row.since.isoformat(),
            "until": row.until.isoformat(),
        }
        for row in rows
    ]


def maybe_duplicated(conn: Connection, *, campaign: str | None = None) -> int:
    """Emails handed to the server more than once (a crash or a lost connection after the
    message went): the recipient may have two copies (same Message-ID)."""
    query = sa.select(sa.func.count()).where(letters.c.sends > 1)
    if campaign is not None:
        query = query.where(letters.c.campaign == campaign)
    return int(conn.execute(query).scalar_one())


def failed_letters(
    engine: Engine, *, campaign: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = (
        sa.select(
            letters.c.sent_at,
            letters.c.campaign,
            letters.c.purpose,
            letters.c.signature_id,
            letters.c.recipient,
            letters.c.error,
            letters.c.bounced_at,
        )
        .where(letters.c.state.in_((LetterState.FAILED, LetterState.BOUNCED)))
        .order_by(
            sa.func.coalesce(letters.c.bounced_at, letters.c.sent_at).desc(), letters.c.id.desc()
        )
        .limit(limit)
    )
    if campaign:
        query = query.where(letters.c.campaign == campaign)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "failed_at": (row.bounced_at or row.sent_at).isoformat()
            if (row.bounced_at or row.sent_at)
            else None,
            "campaign": row.campaign,
            "purpose": row.purpose,
            "signature_id": str(row.signature_id),
            "recipient": mask_email(row.recipient) if row.recipient else "",
            "reason": mask_addresses(row.error or ""),
        }
        for row in rows
    ]


def render_failed(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no failed letters"
    header = ("failed at (UTC)", "campaign", "purpose", "signature", "recipient", "reason")
    table = [
        (
            (r["failed_at"] or "")[:19].replace("T", " "),
            r["campaign"],
            r["purpose"],
            r["signature_id"],
            r["recipient"],
            r["reason"][:120],
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *table]) for i in range(len(header) - 1)]
    lines = []
    for line in [header, *table]:
        cells = [str(c).ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, str(line[-1])]).rstrip())
    lines.append(f"{len(rows)} failed")
    return "\n".join(lines)


def held_about(conn: Connection, key: str) -> dict[str, list[dict[str, Any]]]:
    """Subject access: the emails sent to or for the supporter with this keyed hash, with the
    letters' bodies while they are kept, and any confirmation still waiting for a reminder."""
    from services.mailer.models import pending_confirmations

    sent = conn.execute(
        sa.select(
            letters.c.signature_id,
            letters.c.purpose,
            letters.c.campaign,
            letters.c.state,
            letters.c.recipient,
            letters.c.subject,
            letters.c.body,
            letters.c.created_at,
            letters.c.sent_at,
        )
        .where(letters.c.supporter_key == key)
        .order_by(letters.c.created_at)
    ).mappings()
    waiting = conn.execute(
        sa.select(
            pending_confirmations.c.signature_id,
            pending_confirmations.c.campaign,
            pending_confirmations.c.email,
            pending_confirmations.c.first_name,
            pending_confirmations.c.last_name,
            pending_confirmations.c.received_at,
            pending_confirmations.c.reminded_at,
        ).where(pending_confirmations.c.supporter_key == key)
    ).mappings()
    return {
        "emails": [plain(r) for r in sent],
        "pending_confirmations": [plain(r) for r in waiting],
    }


def bounce_report(conn: Connection, *, campaigns: list[str] | None = None) -> dict[str, Any]:
    """Bounces for ``dearmp status`` and the staff pages (``campaigns``: only theirs): hard and
    soft bounces kept, the MPs' (and fixed targets') addresses flagged with how many letters wait
    for each and whether the MP data still lists the address unchanged since (then
    ``dearmp data refresh-mps`` is needed), and how many supporters' addresses get no more mail."""
    kinds = sa.select(bounces.c.kind, sa.func.count().label("n")).group_by(bounces.c.kind)
    flagged = bounced_addresses.c.cleared_at.is_(None)
    supporters = sa.select(sa.func.count()).where(flagged, bounced_addresses.c.kind == "supporter")
    held = (
        sa.select(sa.func.count())
        .where(
            letters.c.state == LetterState.HELD,
            sa.func.lower(letters.c.recipient) == bounced_addresses.c.address,
        )
        .scalar_subquery()
    )
    listed = sa.exists().where(
        sa.func.lower(mps.c.email) == bounced_addresses.c.address,
        mps.c.updated_at < bounced_addresses.c.flagged_at,
    )
    targets = (
        sa.select(
            bounced_addresses.c.address,
            bounced_addresses.c.campaign,
            bounced_addresses.c.reason,
            bounced_addresses.c.flagged_at,
            held.label("held"),
            listed.label("refresh_needed"),
        )
        .where(flagged, bounced_addresses.c.kind == "target")
        .order_by(bounced_addresses.c.flagged_at.desc())
    )
    if campaigns is not None:
        kinds = kinds.where(bounces.c.campaign.in_(campaigns))
        supporters = supporters.where(bounced_addresses.c.campaign.in_(campaigns))
        targets = targets.where(bounced_addresses.c.campaign.in_(campaigns))
    found = {row.kind: row.n for row in conn.execute(kinds)}
    return {
        "hard": found.get("hard", 0),
        "soft": found.get("soft", 0),
        "supporters_flagged": int(conn.execute(supporters).scalar_one()),
        "targets_flagged": [
            {
                "address": row.address,
                "campaign": row.campaign,
                "reason": mask_addresses(row.reason),
                "flagged_at": row.flagged_at.isoformat(),
                "held": int(row.held),
                "refresh_needed": bool(row.refresh_needed),
            }
            for row in conn.execute(targets)
        ],
    }


def unwritten_letters(
    conn: Connection,
    *,
    campaigns: list[str] | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Letters that could not be written (services/mailer/delivery.py ``UNWRITTEN``: the
    template failed for a supporter's data, or the message could not be built), per campaign:
    how many, the latest reason (addresses masked) and when. ``campaigns``: only theirs;
    ``since``: failed since then. For the staff banner and the owners' notice (problems.py)."""
    failed_at = letters.c.sent_at  # a failure's time, as ``failed_letters`` reads it
    newest = array_agg(aggregate_order_by(letters.c.error, failed_at.desc()))[1]
    query = (
        sa.select(
            letters.c.campaign,
            sa.func.count().label("n"),
            sa.func.max(failed_at).label("last_at"),
            newest.label("reason"),
        )
        .where(
            letters.c.state == LetterState.FAILED,
            letters.c.purpose == "letter",
            letters.c.error.startswith(UNWRITTEN, autoescape=True),
        )
        .group_by(letters.c.campaign)
        .order_by(letters.c.campaign)
    )
    if campaigns is not None:
        query = query.where(letters.c.campaign.in_(campaigns))
    if since is not None:
        query = query.where(failed_at >= since)
    return [
        {
            "campaign": row.campaign,
            "count": int(row.n),
            "reason": mask_addresses(str(row.reason or "").removeprefix(UNWRITTEN)),
            "last_at": row.last_at,
        }
        for row in conn.execute(query)
    ]
