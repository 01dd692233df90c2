"""Sending one email exactly once per (signature, purpose).

1. Claim: one statement writes the letters row as ``sending`` (``sends`` + 1), unless the event
   is already in the inbox, the supporter has been erased, or the row is already ``sent`` or
   ``failed``; then nothing is sent.
2. Outside any transaction: hand the message to SMTP.
3. Record: one statement marks the row ``sent`` (or ``failed``), emits ``letter.sent`` /
   ``letter.failed`` through the outbox and, when asked, claims the event in the inbox.
Each step is a single statement (atomic on its own, one round trip) unless the caller adds work
to it (``may_send``, ``then``): then it runs in a transaction with that work.

A redelivered event for a sent or failed letter sends nothing. Only a crash between the SMTP
server's acceptance and step 3 can resend; the resend carries the same Message-ID and is counted
in ``letters.sends`` (and the ``dearmp_emails_total{outcome="resend"}`` metric). A temporary
failure that certainly did not hand the message over (no connection, a 4xx answer) gives the
claim back (``sending`` → ``created``, ``sends`` − 1), so ``sends`` > 1 means "may have been
delivered more than once".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.mailer.models import erased_supporters, letters
from services.mailer.smtp import PermanentSmtpError, SmtpSender, TemporarySmtpError
from shared import faults, inbox, outbox
from shared.broker.consumer import TransientFailure
from shared.config import Settings
from shared.logging import get_logger
from shared.mail import delivery_recipients
from shared.messages import LetterFailed, LetterSent
from shared.metrics import EMAILS

log = get_logger(__name__)

Outcome = Literal["sent", "failed", "erased", "skipped"]
# Runs in the transaction that records the outcome (sent, failed or erased).
Then = Callable[[Connection, Outcome], None]
ALL_OUTCOMES: frozenset[Outcome] = frozenset(("sent", "failed", "erased"))


@dataclass
class Outgoing:
    signature_id: UUID
    purpose: str
    campaign: str
    message: EmailMessage
    recipient: str
    supporter_key: str | None = None
    body_text: str | None = None


@dataclass(frozen=True)
class Receipt:
    """The event being handled: nothing is sent once it is in the inbox, and it is put there
    with the outcomes named in ``record_on``."""

    consumer: str
    event_id: UUID
    record_on: frozenset[Outcome] = ALL_OUTCOMES


_CLAIM = sa.text(
    """
    INSERT INTO letters (signature_id, purpose, campaign, state, message_id, recipient, subject,
                         body, supporter_key, sends, created_at)
    SELECT CAST(:signature_id AS uuid), :purpose, :campaign, 'sending', :message_id, :recipient,
           :subject, CAST(:body AS text), CAST(:supporter_key AS varchar), 1, :now
    WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE consumer = CAST(:consumer AS varchar)
                                            AND event_id = CAST(:event_id AS uuid))
      AND NOT EXISTS (SELECT 1 FROM erased_supporters
                      WHERE supporter_key = CAST(:supporter_key AS varchar))
    ON CONFLICT ON CONSTRAINT uq_letters_signature_purpose DO UPDATE
       SET state = 'sending', sends = letters.sends + 1
     WHERE letters.state NOT IN ('sent', 'failed')
    RETURNING id, sends
    """
)
# The outcome, its event and (when :consumer is set) the inbox claim, in one statement.
_RECORD = sa.text(
    """
    WITH done AS (
        UPDATE letters SET state = :state, error = :error, sent_at = :now WHERE id = :id
    ), claimed AS (
        INSERT INTO inbox (consumer, event_id, processed_at)
        SELECT CAST(:consumer AS varchar), CAST(:event_id AS uuid), :now
        WHERE CAST(:consumer AS varchar) IS NOT NULL
        ON CONFLICT DO NOTHING
    )
    INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
    VALUES (:o_event_id, :o_routing_key, :o_correlation_id, :o_body, :o_created_at,
            :o_available_at)
    """
)


def is_erased(conn: Connection, supporter_key: str | None) -> bool:
    if supporter_key is None:
        return False
    found = conn.execute(
        sa.select(erased_supporters.c.supporter_key).where(
            erased_supporters.c.supporter_key == supporter_key
        )
    ).first()
    return found is not None


@contextmanager
def _step(engine: Engine, transaction: bool) -> Iterator[Connection]:
    """A transaction when the caller adds work to the step; else autocommit (one statement)."""
    if transaction:
        with engine.begin() as conn:
            yield conn
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn


def deliver_once(
    out: Outgoing,
    *,
    engine: Engine,
    sender: SmtpSender,
    settings: Settings,
    correlation_id: str | None,
    receipt: Receipt | None = None,
    may_send: Callable[[Connection], bool] | None = None,
    then: Then | None = None,
) -> Outcome:
    """Send ``out`` unless it was already sent; returns what became of it. ``skipped``: the
    event was handled before, or ``may_send`` said no (nothing done, ``then`` not run)."""
    now = datetime.now(UTC)
    with _step(engine, may_send is not None or then is not None) as conn:
        if may_send is not None and not may_send(conn):
            return "skipped"
        claimed = conn.execute(
            _CLAIM,
            {
                "signature_id": out.signature_id,
                "purpose": out.purpose,
                "campaign": out.campaign,
                "message_id": out.message["Message-ID"],
                "recipient": out.recipient,
                "subject": str(out.message["Subject"]),
                "body": out.body_text,
                "supporter_key": out.supporter_key,
                "now": now,
                "consumer": receipt.consumer if receipt else None,
                "event_id": receipt.event_id if receipt else None,
            },
        ).first()
        if claimed is None:
            return _not_claimed(conn, out, receipt, then)
        if claimed.sends > 1:
            EMAILS.labels(out.purpose, "resend").inc()
            log.warning("resending after an interrupted send", purpose=out.purpose,
                        sends=claimed.sends)

    recipients = delivery_recipients(
        out.message, out.recipient, live=settings.delivery == "live", sandbox_to=settings.sandbox_to
    )
    try:
        sender.send(out.message, to=recipients)
    except TemporarySmtpError as exc:
        EMAILS.labels(out.purpose, "temporary_failure").inc()
        if not exc.maybe_delivered:
            _release(engine, claimed.id)
        raise TransientFailure(str(exc)) from None
    except PermanentSmtpError as exc:
        EMAILS.labels(out.purpose, "failed").inc()
        failed = LetterFailed(signature_id=out.signature_id, purpose=out.purpose, reason=str(exc))
        _record(engine, claimed.id, correlation_id, "failed", str(exc), failed, receipt, then)
        return "failed"
    faults.point("after_smtp")
    EMAILS.labels(out.purpose, "sent").inc()
    sent = LetterSent(
        signature_id=out.signature_id, purpose=out.purpose, message_id=out.message["Message-ID"]
    )
    _record(engine, claimed.id, correlation_id, "sent", None, sent, receipt, then)
    return "sent"


def _not_claimed(
    conn: Connection, out: Outgoing, receipt: Receipt | None, then: Then | None
) -> Outcome:
    """Why the claim wrote nothing (the rare path): handled before, erased, or already done."""
    if receipt and inbox.already_processed(conn, receipt.consumer, receipt.event_id):
        log.info("duplicate event ignored", purpose=out.purpose)
        return "skipped"
    outcome: Outcome
    if is_erased(conn, out.supporter_key):
        log.info("supporter erased, nothing sent", purpose=out.purpose)
        outcome = "erased"
    else:
        outcome = conn.execute(
            sa.select(letters.c.state).where(
                letters.c.signature_id == out.signature_id, letters.c.purpose == out.purpose
            )
        ).scalar_one()
        log.info("already delivered, nothing sent", purpose=out.purpose, state=outcome)
    if receipt and outcome in receipt.record_on:
        inbox.claim(conn, receipt.consumer, receipt.event_id)
    if then:
        then(conn, outcome)
    return outcome


def _release(engine: Engine, letter_id: int) -> None:
    """The server certainly did not take the message: undo the claim, so ``sends`` keeps
    counting only hand-overs that may have reached it. If this fails, the count errs high."""
    try:
        with _step(engine, False) as conn:
            conn.execute(
                letters.update()
                .where(letters.c.id == letter_id, letters.c.state == "sending")
                .values(state="created", sends=letters.c.sends - 1)
            )
    except sa.exc.SQLAlchemyError:
        log.warning("could not release the letter after a temporary failure")


def _record(
    engine: Engine,
    letter_id: int,
    correlation_id: str | None,
    state: Literal["sent", "failed"],
    error: str | None,
    event: LetterSent | LetterFailed,
    receipt: Receipt | None,
    then: Then | None,
) -> None:
    claim = receipt is not None and state in receipt.record_on
    row = outbox.row_for(event, correlation_id=correlation_id)
    with _step(engine, then is not None) as conn:
        conn.execute(
            _RECORD,
            {
                "state": state,
                "error": error,
                "now": datetime.now(UTC),
                "id": letter_id,
                "consumer": receipt.consumer if claim and receipt else None,
                "event_id": receipt.event_id if claim and receipt else None,
                **{f"o_{k}": v for k, v in row.items()},
            },
        )
        if then:
            then(conn, state)
