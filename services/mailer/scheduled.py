"""Kind to MPs' inboxes: letters that wait for their day instead of going at once.

- **Digest campaigns** (``delivery: digest``): the letter to an MP is recorded ``queued`` with
  its row of the digest (``letters.digest_entry``) and the day it was written (``due_day``);
  ``digests.py`` sends each MP one email per day per campaign with every such row.
- **The daily cap** (``DEARMP_MP_DAILY_CAP``, 0 = none): each individual letter to an MP is
  counted against a day (``due_day``): today while fewer than the cap are counted against it for
  that address, else the first later day with room. A letter for a later day waits ``queued``
  with its whole message (``held_message``) and ``release_due_letters`` sends it, as it is, on
  its day. Counting takes a transaction-scoped advisory lock on the address, so replicas never
  give one day more than the cap.

Either way the supporter's copy goes at once, saying when the letter will go (``copy.txt``:
"in the digest of <day>" or "on <day>"). Queuing is idempotent: one row per (signature,
"letter"), written once (``ON CONFLICT DO NOTHING``); a redelivered event finds it and only
(re)sends the copy, which its own row guards. Release goes through ``deliver_once``, so a
released letter is sent once, with the same Message-ID on a resend after a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_string
from email.message import EmailMessage
from typing import Any, cast

import sqlalchemy as sa
from babel.dates import get_timezone
from sqlalchemy.engine import Connection

from services.mailer.delivery import Outgoing, deliver_once
from services.mailer.models import letters
from shared.broker.consumer import TransientFailure
from shared.logging import get_logger
from shared.mail import POLICY
from shared.messages import Supporter
from shared.states import LetterState

log = get_logger(__name__)
LONDON = get_timezone("Europe/London")
BATCH = 200


def today(now: datetime | None = None) -> date:
    """The day in the UK: what "a day" means for digests and the cap."""
    return (now or datetime.now(UTC)).astimezone(LONDON).date()


@dataclass(frozen=True)
class Scheduled:
    """The letter waits: for ``day``'s digest (``digest``), or to be sent on ``day``."""

    day: date
    digest: bool


def digest_entry(supporter: Supporter, words: str, target_name: str) -> dict[str, Any]:
    """A constituent's row of the digest: what an MP's office needs to answer them."""
    return {
        "name": supporter.full_name,
        "email": supporter.email,
        "address": [*supporter.address_lines, supporter.postcode],
        "words": words,
        # Told apart in the digest: their comment, and their own version of an editable letter
        # (``words`` is that version when they wrote one, else their comment).
        "comment": supporter.comment,
        "own_letter": words if supporter.letter and words == supporter.letter else "",
        "target": target_name,
    }


# Not for an erased supporter (as the claim, delivery.py): nothing of theirs is stored again.
_NOT_ERASED = """
    NOT EXISTS (SELECT 1 FROM erased_supporters
                 WHERE supporter_key = CAST(%(supporter_key)s AS varchar)
                   AND (CAST(%(signed_at)s AS timestamptz) IS NULL
                        OR erased_at >= CAST(%(signed_at)s AS timestamptz)))"""
_QUEUE = f"""
    INSERT INTO letters (signature_id, purpose, campaign, state, message_id, recipient, subject,
                         body, supporter_key, sends, created_at, campaign_version, due_day,
                         held_message, digest_entry)
    SELECT %(signature_id)s, 'letter', %(campaign)s, %(state)s, %(message_id)s, %(recipient)s,
           %(subject)s, %(body)s, %(supporter_key)s, 0, %(now)s, %(campaign_version)s,
           %(due_day)s, %(held_message)s, CAST(%(digest_entry)s AS jsonb)
     WHERE {_NOT_ERASED}
    ON CONFLICT ON CONSTRAINT uq_letters_signature_purpose DO NOTHING
"""
_FIND = """
    SELECT state, due_day, digest_entry IS NOT NULL AS digest, digest_id IS NOT NULL AS taken
      FROM letters WHERE signature_id = %(signature_id)s AND purpose = 'letter'
"""


def _params(letter: Outgoing, state: str, day: date) -> dict[str, Any]:
    return {
        "signature_id": letter.signature_id,
        "campaign": letter.campaign,
        "state": state,
        "message_id": letter.message["Message-ID"],
        "recipient": letter.recipient,
        "subject": str(letter.message["Subject"]),
        "body": letter.body_text,
        "supporter_key": letter.supporter_key,
        "signed_at": letter.signed_at,
        "now": datetime.now(UTC),
        "campaign_version": letter.campaign_version,
        "due_day": day,
        "held_message": None,
        "digest_entry": None,
    }


def _found(conn: Connection, letter: Outgoing) -> Scheduled | None | bool:
    """What became of this letter before: Scheduled (it waits, or went in a digest), None (it
    goes, or went, individually), False (no row yet)."""
    row = conn.exec_driver_sql(_FIND, {"signature_id": letter.signature_id}).first()
    if row is None:
        return False
    if row.digest or row.state == LetterState.QUEUED:
        return Scheduled(row.due_day, bool(row.digest))
    return None


def queue_for_digest(
    conn: Connection, letter: Outgoing, entry: dict[str, Any], day: date
) -> Scheduled | None:
    """Record a digest campaign's letter as waiting for ``day``'s digest (unless recorded
    before: then as it was). None: it was sent on its own before (the campaign was not a
    digest one then) or the supporter was erased: nothing to wait for."""
    params = _params(letter, LetterState.QUEUED, day)
    params["digest_entry"] = json.dumps(entry)
    conn.exec_driver_sql(_QUEUE, params)
    found = _found(conn, letter)
    return found if isinstance(found, Scheduled) else None


def schedule_capped(conn: Connection, letter: Outgoing, cap: int, day: date) -> Scheduled | None:
    """Count an individual letter to an MP against a day: None when it may go now (today has
    room, or it went before), Scheduled when it waits for a later day (its message kept)."""
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(hashtextextended(%(r)s, 0))", {"r": letter.recipient}
    )
    found = _found(conn, letter)
    if found is not False:
        return cast(Scheduled | None, found)
    counted: dict[date, int] = dict(
        conn.exec_driver_sql(
            """SELECT due_day, count(*) FROM letters
                WHERE recipient = %(r)s AND purpose = 'letter' AND due_day >= %(day)s
                GROUP BY due_day""",
            {"r": letter.recipient, "day": day},
        ).all()
    )
    due = day
    while counted.get(due, 0) >= cap:
        due += timedelta(days=1)
    state = LetterState.CREATED if due == day else LetterState.QUEUED
    params = _params(letter, state, due)
    if due != day:
        params["held_message"] = letter.message.as_string()
    conn.exec_driver_sql(_QUEUE, params)
    return None if due == day else Scheduled(due, digest=False)


def release_due_letters(deps: Any, now: datetime | None = None) -> int:
    """Send the capped letters whose day has come (``deps``: the sweep's MailerDeps); returns
    how many went. Replicas may sweep at once: the claim's lease lets one send each."""
    day = today(now)
    with deps.engine.connect() as conn:
        rows = conn.execute(
            sa.select(letters)
            .where(
                letters.c.state == LetterState.QUEUED,
                letters.c.held_message.is_not(None),
                letters.c.due_day <= day,
            )
            .order_by(letters.c.due_day, letters.c.id)
            .limit(BATCH)
        ).all()
    sent = 0
    for row in rows:
        msg = cast(EmailMessage, message_from_string(row.held_message, policy=POLICY))
        out = Outgoing(
            row.signature_id,
            "letter",
            row.campaign,
            msg,
            row.recipient,
            row.supporter_key,
            row.body,
            campaign_version=row.campaign_version,
        )
        try:
            outcome = deliver_once(
                out,
                engine=deps.engine,
                sender=deps.sender,
                settings=deps.settings,
                correlation_id=str(row.signature_id),
            )
        except TransientFailure as exc:  # SMTP away, a live lease, a bounced address: next sweep
            log.warning("capped letter not sent yet", detail=str(exc)[:200])
            continue
        sent += outcome == "sent"
    if sent:
        log.info("letters past the daily cap sent on their day", count=sent)
    return sent
