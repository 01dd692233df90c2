"""Sending one email exactly once per (signature, purpose).

1. In a transaction: claim the row (created → sending) or find it already sent/failed.
2. Outside any transaction: hand the message to SMTP.
3. In a transaction: mark it sent (or failed), claim the event in the inbox, emit
   ``letter.sent`` / ``letter.failed`` through the outbox.
A redelivered event for a sent or failed letter sends nothing. Only a crash between the SMTP
server's acceptance and step 3 can resend; the resend carries the same Message-ID and is counted
in ``letters.sends`` (and the ``dearmp_emails_total{outcome="resend"}`` metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from services.mailer.models import letters
from services.mailer.smtp import PermanentSmtpError, SmtpSender, TemporarySmtpError
from shared import faults, inbox, outbox
from shared.broker.consumer import TransientFailure
from shared.config import Settings
from shared.logging import get_logger
from shared.mail import delivery_recipients
from shared.messages import Envelope, LetterFailed, LetterSent
from shared.metrics import EMAILS

log = get_logger(__name__)


@dataclass
class Outgoing:
    signature_id: UUID
    purpose: str
    campaign: str
    message: EmailMessage
    recipient: str
    body_text: str | None = None


def deliver_once(
    out: Outgoing,
    envelope: Envelope,
    *,
    consumer: str,
    engine: Engine,
    sender: SmtpSender,
    settings: Settings,
) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if inbox.already_processed(conn, consumer, envelope.id):
            return
        conn.execute(
            insert(letters)
            .values(
                signature_id=out.signature_id,
                purpose=out.purpose,
                campaign=out.campaign,
                state="created",
                message_id=out.message["Message-ID"],
                recipient=out.recipient,
                subject=str(out.message["Subject"]),
                body=out.body_text,
                created_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_letters_signature_purpose")
        )
        row = conn.execute(
            sa.select(letters.c.id, letters.c.state, letters.c.sends)
            .where(letters.c.signature_id == out.signature_id, letters.c.purpose == out.purpose)
            .with_for_update()
        ).one()
        if row.state in ("sent", "failed"):
            inbox.claim(conn, consumer, envelope.id)
            log.info("already delivered, nothing sent", purpose=out.purpose, state=row.state)
            return
        if row.state == "sending":
            EMAILS.labels(out.purpose, "resend").inc()
            log.warning("resending after an interrupted send", purpose=out.purpose, sends=row.sends)
        conn.execute(
            letters.update()
            .where(letters.c.id == row.id)
            .values(state="sending", sends=letters.c.sends + 1)
        )

    recipients = delivery_recipients(
        out.message, out.recipient, live=settings.delivery == "live", sandbox_to=settings.sandbox_to
    )
    try:
        sender.send(out.message, to=recipients)
    except TemporarySmtpError as exc:
        EMAILS.labels(out.purpose, "temporary_failure").inc()
        raise TransientFailure(str(exc)) from None
    except PermanentSmtpError as exc:
        EMAILS.labels(out.purpose, "failed").inc()
        _finish(
            engine,
            row.id,
            envelope,
            consumer,
            state="failed",
            error=str(exc),
            event=LetterFailed(signature_id=out.signature_id, purpose=out.purpose, reason=str(exc)),
        )
        return
    faults.point("after_smtp")
    EMAILS.labels(out.purpose, "sent").inc()
    _finish(
        engine,
        row.id,
        envelope,
        consumer,
        state="sent",
        error=None,
        event=LetterSent(
            signature_id=out.signature_id, purpose=out.purpose, message_id=out.message["Message-ID"]
        ),
    )


def _finish(
    engine: Engine,
    letter_id: int,
    envelope: Envelope,
    consumer: str,
    *,
    state: str,
    error: str | None,
    event: LetterSent | LetterFailed,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            letters.update()
            .where(letters.c.id == letter_id)
            .values(state=state, error=error, sent_at=datetime.now(UTC))
        )
        inbox.claim(conn, consumer, envelope.id)
        outbox.add(conn, event, correlation_id=envelope.correlation_id)
