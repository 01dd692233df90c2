"""Bounces (issue 19): each email's VERP return path; the bounce processor reads DSNs (RFC 3464)
and non-standard bounces (flufl.bounce) sent to it over SMTP, marks the email bounced, holds
further letters to an MP's address that bounced and sends nothing more to a supporter's."""

from __future__ import annotations

import email.policy
import smtplib
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
import sqlalchemy as sa

from services.mailer.bounces.record import clear_address
from services.mailer.bounces.serve import start_receiver
from services.mailer.models import bounces, letters, pending_confirmations
from services.mailer.verp import letter_id_from, return_path
from services.ops.status import collect_status, render_status
from shared.messages import Target
from tests.integration.mailer_helpers import CAMPAIGN, count, resolved_event, stage_letters
from tests.support import ServiceProcess, free_port, wait_until

MP2 = Target(name="Other Member", email="other.member.mp@parliament.uk", party="Independent")


@pytest.fixture
def receiver(settings, engine):
    settings = settings.model_copy(update={"bounces_port": free_port()})
    controller = start_receiver(settings, engine)
    yield settings
    controller.stop()


def deliver_bounce(settings, to: str, message: Message) -> None:
    """As the operator's mail server forwards it: over SMTP, to the VERP address."""
    with smtplib.SMTP(settings.bounces_host, settings.bounces_port, timeout=10) as smtp:
        answer = smtp.sendmail("", [to], message.as_bytes(policy=email.policy.SMTP))
        assert answer == {}  # accepted (250), whatever it said


def dsn(to: str, original: Message, *, status: str = "5.1.1", action: str = "failed") -> Message:
    """An RFC 3464 delivery status notification for ``original``."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.parliament.uk"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("Your message could not be delivered.\n"))
    status_part = MIMEBase("message", "delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.parliament.uk"
    per_recipient["Final-Recipient"] = "rfc822; real.member.mp@parliament.uk"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = (
        f"smtp; 550 {status} <real.member.mp@parliament.uk>: Recipient address rejected"
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


def state_of(engine, signature_id, purpose: str = "letter") -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(letters.c.state).where(
                letters.c.signature_id == signature_id, letters.c.purpose == purpose
            )
        ).scalar()


def caught_for(mail, signature_id, purpose: str = "letter"):
    wanted = f"<{purpose}.{signature_id}@"
    return [c for c in mail.messages if str(c.message["Message-ID"]).startswith(wanted)]


def test_a_dsn_marks_the_letter_bounced_and_holds_the_next_letter_to_that_mp(
    system, mail, engine, receiver
) -> None:
    system.start("relay", "mailer")
    first = resolved_event()
    stage_letters(engine, [first])
    mail.handler.wait_for(2, timeout=30)
    (letter,) = caught_for(mail, first.signature_id)
    # The letter's own return path, signed; the From header is unchanged.
    assert letter.mail_from.startswith("bounces+") and letter.mail_from.endswith("@dearmp.invalid")
    assert letter_id_from(letter.mail_from, receiver.secret_key) is not None
    assert letter.message["From"].addresses[0].addr_spec == "letters@dearmp.invalid"
    (copy,) = caught_for(mail, first.signature_id, "copy")
    assert copy.mail_from != letter.mail_from  # every email its own

    deliver_bounce(receiver, letter.mail_from, dsn(letter.mail_from, letter.message))
    wait_until(lambda: state_of(engine, first.signature_id) == "bounced", 10)
    with engine.connect() as conn:
        error = conn.execute(
            sa.select(letters.c.error).where(
                letters.c.signature_id == first.signature_id, letters.c.purpose == "letter"
            )
        ).scalar()
        kinds = conn.execute(sa.select(bounces.c.kind, bounces.c.how)).all()
    assert error.startswith("bounced: 5.1.1") and "real.member" not in error  # no address kept
    assert kinds == [("hard", "dsn")]
    # letter.failed announced, so intake shows the letter as failed
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'letter.failed'") == 1

    second = resolved_event()  # another supporter, the same MP
    stage_letters(engine, [second])
    wait_until(lambda: state_of(engine, second.signature_id) == "held", 15)
    assert not caught_for(mail, second.signature_id)
    assert not caught_for(mail, second.signature_id, "copy")  # the copy follows the letter
    status = render_status(collect_status(receiver))
    assert "Bounces: 1 hard, 0 soft" in status
    assert (
        "MP address real.member.mp@parliament.uk bounced" in status and "1 letters held" in status
    )

    assert clear_address(engine, receiver.secret_key, "Real.Member.MP@parliament.uk")
    wait_until(lambda: state_of(engine, second.signature_id, "copy") == "sent", 15)
    assert len(caught_for(mail, second.signature_id)) == 1


def test_a_non_standard_bounce_is_read_by_flufl_and_a_soft_one_changes_nothing(
    system, mail, engine, receiver
) -> None:
    system.start("relay", "mailer")
    soft, hard = resolved_event(), resolved_event(target=MP2)
    stage_letters(engine, [soft, hard])
    mail.handler.wait_for(4, timeout=30)
    (soft_letter,) = caught_for(mail, soft.signature_id)
    (hard_letter,) = caught_for(mail, hard.signature_id)

    delayed = dsn(soft_letter.mail_from, soft_letter.message, status="4.2.2", action="delayed")
    deliver_bounce(receiver, soft_letter.mail_from, delayed)
    deliver_bounce(receiver, hard_letter.mail_from, qmail_bounce(hard_letter.mail_from))
    wait_until(lambda: state_of(engine, hard.signature_id) == "bounced", 10)
    with engine.connect() as conn:
        found = conn.execute(sa.select(bounces.c.kind, bounces.c.how, bounces.c.status)).all()
    assert sorted(found) == [("hard", "heuristic", "5.0.0"), ("soft", "dsn", "4.2.2")]
    assert state_of(engine, soft.signature_id) == "sent"  # recorded, nothing changed

    after = resolved_event(target=MP2)
    stage_letters(engine, [after])
    wait_until(lambda: state_of(engine, after.signature_id) == "held", 15)
    again = resolved_event()  # the soft bounce's MP still gets letters
    stage_letters(engine, [again])
    wait_until(lambda: state_of(engine, again.signature_id, "copy") == "sent", 15)


def test_a_supporters_bounced_address_gets_no_further_copy_or_reminder(
    system, mail, engine, receiver
) -> None:
    system.start("relay")
    system.services["mailer"].start({"DEARMP_REMINDER_SWEEP_SECONDS": "0.5"})
    email = f"gone-{uuid.uuid4().hex[:8]}@example.org"
    first = resolved_event(email=email)
    stage_letters(engine, [first])
    mail.handler.wait_for(2, timeout=30)
    (copy,) = caught_for(mail, first.signature_id, "copy")
    deliver_bounce(receiver, copy.mail_from, dsn(copy.mail_from, copy.message, status="5.1.2"))
    wait_until(lambda: state_of(engine, first.signature_id, "copy") == "bounced", 10)
    assert state_of(engine, first.signature_id) == "sent"  # the letter to the MP is untouched

    second = resolved_event(email=email, comment="Once more.")
    stage_letters(engine, [second])
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'mailer'") == 2, 15
    )
    assert len(caught_for(mail, second.signature_id)) == 1  # the MP still gets the letter
    assert not caught_for(mail, second.signature_id, "copy")
    assert state_of(engine, second.signature_id, "copy") is None

    # A reminder due for that address: nothing sent, and the reminder is settled.
    now = datetime.now(UTC)
    signature_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            pending_confirmations.insert().values(
                signature_id=signature_id,
                campaign=CAMPAIGN,
                email=email,
                first_name="Jo",
                last_name="Bloggs",
                received_at=now - timedelta(days=2),
                due_at=now - timedelta(days=1),
            )
        )
    reminded = "SELECT count(*) FROM pending_confirmations WHERE reminded_at IS NOT NULL"
    wait_until(lambda: count(engine, reminded) == 1, 15, message="the reminder sweep")
    assert not caught_for(mail, signature_id, "reminder")


def test_a_forged_or_unknown_return_path_changes_nothing(engine, receiver) -> None:
    sid = uuid.uuid4()
    with engine.begin() as conn:
        letter_id = conn.execute(
            letters.insert()
            .values(
                signature_id=sid,
                purpose="letter",
                campaign=CAMPAIGN,
                state="sent",
                message_id=f"<letter.{sid}@dearmp.invalid>",
                recipient="real.member.mp@parliament.uk",
                subject="s",
                sends=1,
                created_at=datetime.now(UTC),
            )
            .returning(letters.c.id)
        ).scalar_one()
    genuine = return_path(receiver, letter_id)
    forged = genuine.replace(genuine.split("-")[-1].split("@")[0], "0123456789abcdef")
    other = return_path(
        receiver.model_copy(update={"secret_key": "another-key-0123456789"}), letter_id
    )
    original = Message()
    original["Message-ID"] = f"<letter.{sid}@dearmp.invalid>"  # known to the forger: not believed
    for to in (forged, other, "bounces@dearmp.invalid", f"bounces+{letter_id}@dearmp.invalid"):
        deliver_bounce(receiver, to, dsn(to, original))
    with engine.connect() as conn:
        assert conn.execute(sa.select(letters.c.state)).scalar() == "sent"
        assert conn.execute(sa.select(sa.func.count()).select_from(bounces)).scalar() == 0
        assert count(engine, "SELECT count(*) FROM bounced_addresses") == 0


def test_dearmp_serve_bounces_takes_mail_and_stops_cleanly(service_env, settings) -> None:
    port = free_port()
    env = {**service_env, "DEARMP_BOUNCES_PORT": str(port), "DEARMP_METRICS_PORT": "0"}
    process = ServiceProcess("bounces", env, tag="serve-bounces").start()
    try:
        process.wait_started(20)
        to = "bounces+1-0123456789abcdef@dearmp.invalid"  # not ours: accepted, dropped
        deliver_bounce(settings.model_copy(update={"bounces_port": port}), to, qmail_bounce(to))
        wait_until(lambda: "bounce dropped" in process.output(), 10)
        assert "other.member" not in process.output()  # no personal data in the log
    finally:
        code = process.terminate(20)
    assert code == 0, process.output()[-2000:]
    assert "bounces stopped" in process.output()
