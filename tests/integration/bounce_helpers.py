"""Helpers for the bounce tests: the receiver in this process, bounces as mail servers write them,
and letters as the mailer leaves them."""

from __future__ import annotations

import email.policy
import smtplib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import pytest
import sqlalchemy as sa

from services.mailer.bounces.serve import start_receiver
from services.mailer.models import letters
from shared.config import Settings
from tests.integration.mailer_helpers import CAMPAIGN, MP
from tests.support import free_port


@pytest.fixture
def receiver(settings: Settings, engine: sa.Engine) -> Iterator[Settings]:
    """``dearmp serve bounces``'s receiver (aiosmtpd) on a port of its own; yields its settings."""
    settings = settings.model_copy(update={"bounces_port": free_port()})
    controller = start_receiver(settings, engine)
    yield settings
    controller.stop()


def deliver_bounce(settings: Settings, to: str, message: Message) -> None:
    """As the operator's mail server forwards it: over SMTP, to the VERP address. The receiver
    answers once the message is recorded."""
    send_raw(settings, to, message.as_bytes(policy=email.policy.SMTP))


def send_raw(settings: Settings, to: str, data: bytes) -> None:
    with smtplib.SMTP(settings.bounces_host, settings.bounces_port, timeout=10) as smtp:
        answer = smtp.sendmail("", [to], data)
        assert answer == {}  # accepted (250), whatever it said (a 4xx/5xx raises)


def dsn(
    to: str,
    original: Message,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    final_recipient: str = MP.email,
) -> Message:
    """An RFC 3464 delivery status notification for ``original``, marked ``Auto-Submitted`` as
    Postfix and Exim mark theirs."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.parliament.uk"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText("Your message could not be delivered.\n"))
    status_part = MIMEBase("message", "delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.parliament.uk"
    per_recipient["Final-Recipient"] = f"rfc822; {final_recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = (
        f"smtp; 550 {status} <{final_recipient}>: Recipient address rejected"
    )
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = MIMEBase("text", "rfc822-headers")
    headers.set_payload(original.as_string(policy=email.policy.SMTP).split("\r\n\r\n")[0])
    report.attach(headers)
    return report


def qmail_bounce(to: str) -> EmailMessage:
    """A non-standard bounce (qmail's QSBMF): no DSN part, only prose."""
    msg = EmailMessage()
    msg["From"] = "MAILER-DAEMON@mail.example.net"
    msg["To"] = to
    msg["Subject"] = "failure notice"
    msg.set_content(
        "Hi. This is the qmail-send program at mail.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<other.member.mp@parliament.uk>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n"
    )
    return msg


def state_of(engine: sa.Engine, signature_id: uuid.UUID, purpose: str = "letter") -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(letters.c.state).where(
                letters.c.signature_id == signature_id, letters.c.purpose == purpose
            )
        ).scalar()


def caught_for(mail: Any, signature_id: uuid.UUID, purpose: str = "letter") -> list[Any]:
    wanted = f"<{purpose}.{signature_id}@"
    return [c for c in mail.messages if str(c.message["Message-ID"]).startswith(wanted)]


def make_sent_letter(engine: sa.Engine, *, recipient: str = MP.email) -> int:
    """A letter row as the mailer leaves it once sent; returns its id."""
    sid = uuid.uuid4()
    with engine.begin() as conn:
        return int(
            conn.execute(
                letters.insert()
                .values(
                    signature_id=sid,
                    purpose="letter",
                    campaign=CAMPAIGN,
                    state="sent",
                    message_id=f"<letter.{sid}@dearmp.invalid>",
                    recipient=recipient,
                    subject="s",
                    sends=1,
                    created_at=datetime.now(UTC),
                )
                .returning(letters.c.id)
            ).scalar_one()
        )
