"""Keeping personal data no longer than needed: retention and erasure in the mailer's tables.

- Retention (``scrub_expired``, a periodic task of ``dearmp serve mailer``): letters sent more
  than ``DEARMP_RETENTION_DAYS`` ago lose their body, subject, the supporter's address and the
  supporter key; pending confirmations that are settled and that old are deleted.
- Erasure (``erase_supporter``, on supporter.erasure_requested): the same scrub for every letter
  of that supporter whatever its age, their pending confirmations deleted, and their keyed hash
  remembered so nothing more is sent to them.
A scrubbed letter row stays: it records that a message was sent (state, purpose, campaign,
Message-ID, sends, the error with any address in it removed), which ``dearmp letters failed``
and the duplicate counts rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.mailer.models import (
    bounced_addresses,
    bounces,
    erased_supporters,
    letters,
    pending_confirmations,
    reply_questions,
)
from shared.config import Settings
from shared.erased import remember
from shared.logging import get_logger
from shared.states import LetterState

log = get_logger(__name__)

BATCH = 1000
ADDRESS_RE = r"[^[:space:]<>@\"',;:]+@[^[:space:]<>\"',;:]+"


def _scrubbed(now: datetime) -> dict[str, object]:
    return {
        "body": None,
        "subject": "",
        # The target's address (a public office) stays; the supporter's own address goes.
        "recipient": sa.case((letters.c.purpose == "letter", letters.c.recipient), else_=""),
        "error": sa.func.regexp_replace(letters.c.error, ADDRESS_RE, "[address removed]", "g"),
        "supporter_key": None,
        "held_message": None,
        "digest_entry": None,
        "scrubbed_at": now,
    }


def erase_supporter(conn: Connection, key: str, asked_at: datetime) -> dict[str, int]:
    """Remove what the mailer holds for the supporter with this key (every letter, whenever
    signed); remember them as erased as of ``asked_at``; returns counts by table."""
    now = datetime.now(UTC)
    remember(conn, erased_supporters, key, asked_at)
    # A letter still waiting for its day or its digest (scheduled.py) never goes: removed.
    dropped = conn.execute(
        letters.delete().where(
            letters.c.supporter_key == key, letters.c.state == LetterState.QUEUED
        )
    ).rowcount
    theirs = sa.select(letters.c.id).where(letters.c.supporter_key == key)
    conn.execute(bounces.delete().where(bounces.c.letter_id.in_(theirs)))
    conn.execute(
        bounced_addresses.delete().where(
            bounced_addresses.c.address_key == key, bounced_addresses.c.kind == "supporter"
        )
    )
    scrubbed = (
        dropped
        + conn.execute(
            letters.update().where(letters.c.supporter_key == key).values(**_scrubbed(now))
        ).rowcount
    )
    deleted = conn.execute(
        pending_confirmations.delete().where(pending_confirmations.c.supporter_key == key)
    ).rowcount
    conn.execute(reply_questions.delete().where(reply_questions.c.supporter_key == key))
    return {"letters": scrubbed, "pending_confirmations": deleted}


def scrub_expired(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Scrub what is older than the retention period, in batches; returns counts by table."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    total = {"letters": 0, "pending_confirmations": 0}
    due = (
        sa.select(letters.c.id)
        .where(
            letters.c.scrubbed_at.is_(None),
            letters.c.state != LetterState.QUEUED,  # still to go: kept until it has gone
            letters.c.created_at < cutoff,
            sa.or_(letters.c.sent_at.is_(None), letters.c.sent_at < cutoff),
        )
        .limit(BATCH)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    while True:
        with engine.begin() as conn:
            n = conn.execute(
                letters.update().where(letters.c.id.in_(due)).values(**_scrubbed(now))
            ).rowcount
        total["letters"] += n
        if n < BATCH:
            break
    settled = sa.or_(
        pending_confirmations.c.confirmed,
        pending_confirmations.c.reminded_at.is_not(None),
        pending_confirmations.c.due_at < cutoff,
    )
    with engine.begin() as conn:
        total["pending_confirmations"] = conn.execute(
            pending_confirmations.delete().where(
                pending_confirmations.c.received_at < cutoff, settled
            )
        ).rowcount
    asked = _expired_questions(engine, cutoff)  # logged, not in the counts returned
    with engine.begin() as conn:  # bounces: the rows go (logged, not in the counts returned)
        gone = conn.execute(bounces.delete().where(bounces.c.received_at < cutoff)).rowcount
    if any(total.values()) or gone or asked:
        log.info("retention: personal data scrubbed", bounces=gone, reply_questions=asked, **total)
    return total


def _expired_questions(engine: Engine, cutoff: datetime) -> int:
    """Reply questions closed before the cutoff, and those whose letter never went (failed, or
    no row) made before it."""
    q = reply_questions
    letter_went = (
        sa.select(letters.c.id)
        .where(
            letters.c.signature_id == q.c.signature_id,
            letters.c.purpose == "letter",
            letters.c.state.not_in(("failed", "bounced")),
        )
        .exists()
    )
    with engine.begin() as conn:
        return int(
            conn.execute(
                q.delete().where(
                    sa.or_(
                        q.c.closed_at < cutoff,
                        sa.and_(q.c.created_at < cutoff, q.c.asked_at.is_(None), ~letter_went),
                    )
                )
            ).rowcount
        )
