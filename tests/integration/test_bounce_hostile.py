"""Bounces from hostile or careless mail (issue 25): an MP's office that auto-replies quoting a
supporter's comment, a report about another address, and malformed mail to a return path.

Real parts throughout: the mailer sends letters to the mail catcher, the bounce receiver
(aiosmtpd, in this process or as ``dearmp serve bounces``) takes mail over SMTP, Postgres keeps it.
The receiver answers only after a message is recorded, so its effects are checked as soon as
``deliver_bounce`` returns."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage, Message

import hypothesis
import pytest
import sqlalchemy as sa
from hypothesis import strategies as st

from services.mailer.models import bounces, letters
from services.mailer.verp import return_path
from tests.integration.bounce_helpers import (
    caught_for,
    deliver_bounce,
    dsn,
    make_sent_letter,
    receiver,
    send_raw,
    state_of,
)
from tests.integration.mailer_helpers import count, resolved_event, stage_letters
from tests.support import ServiceProcess, free_port, wait_until

__all__ = ["receiver"]  # a fixture

# A supporter's comment that reads, to flufl.bounce's heuristics, as a bounce for the MP.
COMMENT = "Undeliverable Address: real.member.mp@parliament.uk"
ANSWER = "Thank you for contacting the office of Real Member MP. We read every message."


def letter_text(caught) -> str:
    return caught.message.get_body(("plain",)).get_content()


def auto_reply(to: str, body: str, **headers: str) -> EmailMessage:
    """The MP's office answering a letter, as its mail system would."""
    msg = EmailMessage()
    msg["From"] = "Real Member MP <real.member.mp@parliament.uk>"
    msg["To"] = to
    msg["Subject"] = "Automatic reply: your letter"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def with_attached_original(to: str, original: EmailMessage) -> EmailMessage:
    msg = auto_reply(to, ANSWER)
    msg.add_attachment(original)  # message/rfc822
    return msg


def flagged(engine) -> int:
    return count(engine, "SELECT count(*) FROM bounced_addresses")


def test_an_mps_auto_reply_quoting_a_supporters_comment_holds_nothing(
    system, mail, engine, receiver
) -> None:
    """Finding: a supporter's comment got the MP's address flagged when the office auto-replied
    quoting the letter (the heuristics read the quoted text), and every organisation's letters
    to that MP were held."""
    system.start("relay", "mailer")
    signed = [resolved_event(comment=COMMENT) for _ in range(6)]
    stage_letters(engine, signed)
    mail.handler.wait_for(12, timeout=30)
    sent = [caught_for(mail, s.signature_id)[0] for s in signed]
    text = letter_text(sent[0])
    assert COMMENT in text  # the comment reached the letter as written
    quoted = "\n".join(f"> {line}" for line in text.splitlines())
    replies = [
        # RFC 3834 auto-replies, quoting or copying the letter
        auto_reply(sent[0].mail_from, f"{ANSWER}\n\n{quoted}", Auto_Submitted="auto-replied"),
        auto_reply(sent[1].mail_from, f"{ANSWER}\n\n{text}", X_Autoreply="yes"),
        auto_reply(sent[2].mail_from, f"{ANSWER}\n\n{text}", Precedence="bulk"),
        # no auto-reply headers: quoted lines, an attached original are not read
        auto_reply(sent[3].mail_from, f"{ANSWER}\n\n{quoted}"),
        with_attached_original(sent[4].mail_from, sent[4].message),
        # an office that copies the letter inline, unquoted and unmarked: the heuristics see the
        # comment, and that is a signal only
        auto_reply(sent[5].mail_from, f"{ANSWER}\n\n-----Original Message-----\n{text}"),
    ]
    for reply, letter in zip(replies, sent, strict=True):
        deliver_bounce(receiver, letter.mail_from, reply)
        assert flagged(engine) == 0, f"the MP's address was flagged by: {reply['Subject']}"
    assert {state_of(engine, s.signature_id) for s in signed} == {"sent"}
    with engine.connect() as conn:
        kept = conn.execute(sa.select(bounces.c.kind, bounces.c.how, bounces.c.reason)).all()
    assert [(k, h) for k, h, _ in kept] == [("soft", "heuristic")]
    assert "a signal only" in kept[0].reason

    later = resolved_event()  # another supporter writes to the same MP: the letter goes
    stage_letters(engine, [later])
    wait_until(lambda: state_of(engine, later.signature_id, "copy") == "sent", 15)
    assert len(caught_for(mail, later.signature_id)) == 1


def test_a_report_about_another_address_does_not_hold_the_mp(
    system, mail, engine, receiver
) -> None:
    """The failed recipient must be the letter's: a DSN that names another address (a forward,
    the sandbox, a report about someone else) is kept as a signal, and the MP gets letters."""
    system.start("relay", "mailer")
    first = resolved_event()
    stage_letters(engine, [first])
    mail.handler.wait_for(2, timeout=30)
    (letter,) = caught_for(mail, first.signature_id)

    other = dsn(letter.mail_from, letter.message, final_recipient="someone.else@parliament.uk")
    deliver_bounce(receiver, letter.mail_from, other)
    assert flagged(engine) == 0
    assert state_of(engine, first.signature_id) == "sent"
    with engine.connect() as conn:
        kept = conn.execute(sa.select(bounces.c.kind, bounces.c.how, bounces.c.status)).all()
    assert kept == [("soft", "dsn", "5.1.1")]

    # The same report for the letter's own recipient, written the way a server may (mixed case,
    # angle brackets): the letter bounced, the MP's address is held.
    own = dsn(letter.mail_from, letter.message, final_recipient="<Real.Member.MP@Parliament.uk>")
    deliver_bounce(receiver, letter.mail_from, own)
    assert state_of(engine, first.signature_id) == "bounced"
    assert flagged(engine) == 1


def raw_bounce(to: str, headers: bytes, body: bytes) -> bytes:
    return b"To: " + to.encode() + b"\r\n" + headers + b"\r\n" + body


# A name and address in Latin-1 in a header (not RFC 2047): the email package gives compat32
# callers a Header object, on which flufl.bounce's detectors raised AttributeError (aiosmtpd then
# answered "500 Error: (AttributeError) 'Header' object has no attribute 'lower'").
EIGHT_BIT_FROM = (
    b"From: Zo\xeb Quirkfield <zoe.quirkfield@example.org>\r\n"
    b"X-Mailer: Z\xf6rn\r\n"
    b"Subject: failure notice\r\n"
    b"Content-Type: text/plain\r\n",
    b"Hi. This is the qmail-send program at mail.example.net.\r\n"
    b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
    b"<real.member.mp@parliament.uk>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n",
)
# A report whose diagnostic holds a NUL: PostgreSQL refused the text (DataError, a DBAPIError),
# and the receiver answered 451, so the forwarding server would have retried it for ever.
NUL_DIAGNOSTIC = (
    b"From: MAILER-DAEMON@mx.parliament.uk\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=zz\r\n",
    b"--zz\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
    b"--zz\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.parliament.uk\r\n\r\n"
    b"Final-Recipient: rfc822; real.member.mp@parliament.uk\r\n"
    b"Action: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 no such user \x00 Zo\xeb Quirkfield\r\n\r\n"
    b"--zz--\r\n",
)


def test_malformed_mail_to_a_return_path_gets_250_and_a_log_without_personal_data(
    service_env, settings, engine
) -> None:
    """Finding: malformed bounces were answered 500 with the exception's text (or 451 for ever);
    the receiver must accept (250) and ignore what it cannot read, logging no personal data."""
    port = free_port()
    env = {**service_env, "DEARMP_BOUNCES_PORT": str(port), "DEARMP_METRICS_PORT": "0"}
    process = ServiceProcess("bounces", env, tag="bounces-malformed").start()
    try:
        process.wait_started(20)
        listening = settings.model_copy(update={"bounces_port": port})
        to = return_path(settings, make_sent_letter(engine))
        for headers, body in (EIGHT_BIT_FROM, NUL_DIAGNOSTIC):
            try:
                send_raw(listening, to, raw_bounce(to, headers, body))
            except smtplib.SMTPResponseException as exc:
                pytest.fail(f"answered {exc.smtp_code} {exc.smtp_error!r}, not 250")
        wait_until(lambda: process.output().count("bounce recorded") == 2, 10)
        output = process.output()
    finally:
        assert process.terminate(20) == 0
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(bounces.c.kind, bounces.c.how, bounces.c.reason).order_by(bounces.c.id)
        ).all()
        state = conn.execute(sa.select(letters.c.state)).scalar()
    # the qmail text is a signal; the report, its NUL dropped, is the letter's hard bounce
    assert [(k, h) for k, h, _ in kept] == [("soft", "heuristic"), ("hard", "dsn")]
    assert "\x00" not in kept[1].reason and state == "bounced"
    for private in ("Quirkfield", "zoe.quirkfield", "Zo\ufffd", "real.member"):
        assert private not in output
    assert "Traceback" not in output and "object has no attribute" not in output


def test_whatever_comes_to_a_return_path_is_answered_250(settings, engine, receiver) -> None:
    """A property of the receiver: messages built from pieces that have broken mail parsers
    (8-bit and NUL bytes in headers and reports, broken MIME, nested originals, unknown
    charsets) all get 250, and nothing but a report for the letter's own address holds it."""
    letter_id = make_sent_letter(engine, recipient="nobody.here.mp@parliament.uk")
    to = return_path(receiver, letter_id)
    noise = st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    header_names = st.sampled_from(
        [b"From", b"X-Mailer", b"Subject", b"Auto-Submitted", b"Precedence", b"Content-Type"]
    )
    content_types = st.sampled_from(
        [
            b"text/plain",
            b"text/plain; charset=no-such-charset",
            b"multipart/mixed",
            b"multipart/mixed; boundary=zz",
            b"multipart/report; report-type=delivery-status; boundary=zz",
            b"message/delivery-status",
            b"message/rfc822",
            b"text/rfc822-headers",
        ]
    )
    parts = st.lists(
        st.tuples(content_types, noise, st.sampled_from([b"", b"Status: 5.1.1\r\n", b"> x"])),
        max_size=4,
    )

    @hypothesis.settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(
        headers=st.lists(st.tuples(header_names, noise), max_size=5),
        top=content_types,
        parts=parts,
    )
    def answered_250(headers, top, parts) -> None:
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        head += b"Content-Type: " + top + b"\r\n"
        body = b"".join(
            b"--zz\r\nContent-Type: " + ctype + b"\r\n\r\n" + fill + b"\r\n" + extra + b"\r\n"
            for ctype, fill, extra in parts
        )
        send_raw(receiver, to, raw_bounce(to, head, body + b"--zz--\r\n"))

    answered_250()
    with engine.connect() as conn:
        assert conn.execute(sa.select(letters.c.state)).scalar() == "sent"
    assert flagged(engine) == 0


def test_a_report_inside_an_attached_message_is_not_read(engine, receiver) -> None:
    """Only the top-level report's own ``message/delivery-status`` part is read: a report for
    the MP's address inside an attached (or forwarded) message flags nothing."""
    to = return_path(receiver, make_sent_letter(engine))
    original = Message()
    original["Message-ID"] = "<x@dearmp.invalid>"
    wrapper = auto_reply(to, "Please see the attached.")
    wrapper.add_attachment(dsn(to, original))
    deliver_bounce(receiver, to, wrapper)
    assert flagged(engine) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(letters.c.state)).scalar() == "sent"
