"""Digest campaigns: each MP's office gets one email per day per campaign listing every
constituent who wrote that day. A periodic task of ``dearmp serve mailer`` (``send_scheduled``).

Exactly once per (campaign, MP's address, day), even across crashes:

1. **Form** (one transaction per group): a letters row for the digest, ``(digest id,
   "digest")``, the id a UUID5 of (campaign, address, day), is inserted ``created``; in the
   same transaction every waiting (``queued``) letter of that campaign to that address, for
   that day or earlier and in no digest yet, is taken into it (``digest_id``). From then on its
   rows never change. If the digest for that day exists already (a letter recorded just as the
   day ended, after its digest was formed), such late letters move to the next day's digest:
   none is lost, none is in two.
2. **Send**: the digest is built from its rows (and the campaign's letter, written once at
   its top: ``compose.digest``) and sent by ``deliver_once`` like any
   email: a claim with a lease, the hand-over outside any transaction, one statement recording
   it, a deterministic Message-ID (``<digest.<id>@domain>``). A SIGKILL before the server took
   it sends it once after the lease ends; one after (before the record) sends it again with the
   same Message-ID, counted in ``letters.sends`` and ``dearmp_emails_total{outcome="resend"}``,
   exactly as for a letter.
3. **Record**: in the same transaction as the digest's ``sent`` (or ``failed``), its letters
   become ``sent`` (``failed``) and each gets its ``letter.sent`` (``letter.failed``), with the
   digest's Message-ID.

A day's digest is formed once the day (Europe/London) is over and ``DEARMP_DIGEST_HOUR`` of
the next has come; days the mailer missed go together into the latest day's digest.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.mailer import compose
from services.mailer.delivery import Outcome, Outgoing, deliver_once
from services.mailer.models import letters
from services.mailer.scheduled import LONDON
from shared import outbox
from shared.broker.consumer import PermanentFailure, TransientFailure
from shared.letter_email import running_organisation
from shared.logging import get_logger
from shared.messages import LetterFailed, LetterSent
from shared.organisations import cached_brand
from shared.states import LetterState

log = get_logger(__name__)
BATCH = 100
DIGESTS = uuid.UUID("6f1d3c52-2b9e-4b59-9a53-5d0c0f1e7a41")  # the namespace of digest ids

_GROUPS = f"""
    SELECT campaign, recipient, max(due_day) AS day FROM letters
     WHERE state = '{LetterState.QUEUED}' AND digest_entry IS NOT NULL AND digest_id IS NULL
       AND due_day < %(ended_by)s
     GROUP BY campaign, recipient
"""
_NEW = f"""
    INSERT INTO letters (signature_id, purpose, campaign, state, message_id, recipient, subject,
                         sends, created_at, due_day)
    VALUES (%(id)s, 'digest', %(campaign)s, '{LetterState.CREATED}', %(message_id)s,
            %(recipient)s, %(subject)s, 0, %(now)s, %(day)s)
    ON CONFLICT ON CONSTRAINT uq_letters_signature_purpose DO NOTHING
    RETURNING id
"""
_WAITING = f"""
     WHERE state = '{LetterState.QUEUED}' AND digest_entry IS NOT NULL AND digest_id IS NULL
       AND campaign = %(campaign)s AND recipient = %(recipient)s AND due_day <= %(day)s
"""


def digest_id(campaign: str, recipient: str, day: date) -> uuid.UUID:
    return uuid.uuid5(DIGESTS, f"{campaign}\n{recipient}\n{day.isoformat()}")


def ended_by(now: datetime, hour: int) -> date:
    """Digests are formed for the days before this one."""
    local = now.astimezone(LONDON)
    return local.date() if local.hour >= hour else local.date() - timedelta(days=1)


def form_digests(deps: Any, now: datetime | None = None) -> int:
    """Take the waiting letters of the days that are over into their digests; returns how many
    digests were formed."""
    limit = ended_by(now or datetime.now(UTC), deps.settings.digest_hour)
    with deps.engine.connect() as conn:
        groups = conn.exec_driver_sql(_GROUPS, {"ended_by": limit}).all()
    formed = 0
    for group in groups:
        the_id = digest_id(group.campaign, group.recipient, group.day)
        params = {
            "id": the_id,
            "campaign": group.campaign,
            "recipient": group.recipient,
            "day": group.day,
            "message_id": compose.message_id("digest", the_id, deps.settings),
            "subject": f"digest of {group.day.isoformat()}",
            "now": datetime.now(UTC),
        }
        with deps.engine.begin() as conn:
            if conn.exec_driver_sql(_NEW, params).first() is not None:
                conn.exec_driver_sql("UPDATE letters SET digest_id = %(id)s" + _WAITING, params)
                formed += 1
            else:  # that day's digest was formed before: these go in the next day's
                conn.exec_driver_sql("UPDATE letters SET due_day = %(day)s + 1" + _WAITING, params)
    return formed


def _record_rows(the_id: uuid.UUID, message_id: str, error: str) -> Any:
    """The digest's letters share its outcome, in the transaction that records it."""

    def then(conn: Connection, outcome: Outcome) -> None:
        if outcome not in ("sent", "failed"):
            return
        rows = conn.execute(
            letters.update()
            .where(letters.c.digest_id == the_id, letters.c.state == LetterState.QUEUED)
            .values(
                state=outcome,
                sent_at=datetime.now(UTC),
                error=None if outcome == "sent" else error,
            )
            .returning(letters.c.signature_id)
        ).all()
        events: list[Any] = [
            (
                LetterSent(signature_id=r.signature_id, purpose="letter", message_id=message_id)
                if outcome == "sent"
                else LetterFailed(signature_id=r.signature_id, purpose="letter", reason=error),
                str(r.signature_id),
            )
            for r in rows
        ]
        outbox.add_many(conn, events)

    return then


def send_digest(deps: Any, row: Any) -> Outcome:
    """Build the digest from its rows and send it once."""
    campaign = deps.campaign(row.campaign)
    with deps.engine.connect() as conn:
        entries = [
            r.digest_entry
            for r in conn.execute(
                sa.select(letters.c.digest_entry)
                .where(letters.c.digest_id == row.signature_id, letters.c.digest_entry.is_not(None))
                .order_by(letters.c.id)
            )
        ]
    if not entries:  # every supporter in it was erased before it went
        with deps.engine.begin() as conn:
            conn.execute(
                letters.update()
                .where(letters.c.id == row.id)
                .values(state=LetterState.FAILED, error="nothing to send: every row was erased")
            )
        return "failed"
    msg = compose.digest(
        row.signature_id,
        campaign,
        row.recipient,
        row.due_day,
        entries,
        deps.settings,
        organisation=running_organisation(cached_brand(deps.engine, row.campaign)),
    )
    out = Outgoing(row.signature_id, "digest", row.campaign, msg, row.recipient)
    message_id = str(msg["Message-ID"])
    return deliver_once(
        out,
        engine=deps.engine,
        sender=deps.sender,
        settings=deps.settings,
        correlation_id=str(row.signature_id),
        then=_record_rows(row.signature_id, message_id, "the MP's mail server refused the digest"),
    )


def send_due_digests(deps: Any, now: datetime | None = None) -> int:
    """Form the digests of the days that are over and send every digest not yet sent (a crash
    left it ``sending``: its lease decides when it may go again); returns how many went."""
    form_digests(deps, now)
    with deps.engine.connect() as conn:
        due = conn.execute(
            sa.select(letters)
            .where(
                letters.c.purpose == "digest",
                letters.c.state.in_((LetterState.CREATED, LetterState.SENDING, LetterState.HELD)),
            )
            .order_by(letters.c.id)
            .limit(BATCH)
        ).all()
    sent = 0
    for row in due:
        try:
            outcome = send_digest(deps, row)
        except TransientFailure as exc:  # SMTP away, a live lease, a bounced address
            log.warning("digest not sent yet", detail=str(exc)[:200])
            continue
        except (PermanentFailure, ValueError) as exc:
            log.error("digest cannot be built", detail=str(exc)[:200])
            continue
        sent += outcome == "sent"
    if sent:
        log.info("digests sent", count=sent)
    return sent
