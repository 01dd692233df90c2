"""Reading bounces without I/O (services/mailer/bounces/): which mail is read at all, which part
of it, and what a failure may change (issue 25)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from services.mailer.bounces.parse import Bounce, parse, read_bounce, without_addresses
from services.mailer.bounces.record import verdict
from services.mailer.bounces.screen import is_auto_reply, own_text

MP = "real.member.mp@parliament.uk"
COMMENT = f"Undeliverable Address: {MP}"


def reply(body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Real Member MP <{MP}>"
    msg["Subject"] = "Re: your letter"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def report(*, final_recipient: str = MP, status: str = "5.1.1", **headers: str) -> bytes:
    head = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (
        "From: MAILER-DAEMON@mx.parliament.uk\r\n" + head + "Content-Type: multipart/report; "
        "report-type=delivery-status; boundary=zz\r\n\r\n"
        "--zz\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
        "--zz\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.parliament.uk\r\n\r\n"
        f"Final-Recipient: rfc822; {final_recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{final_recipient}> unknown\r\n\r\n--zz--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("headers", "auto"),
    [
        ({"Auto_Submitted": "auto-replied"}, True),
        ({"Auto_Submitted": "auto-generated; owner-email=x"}, True),
        ({"Auto_Submitted": "No"}, False),
        ({"X_Autoreply": "yes"}, True),
        ({"X_Autorespond": "1"}, True),
        ({"Precedence": "Bulk"}, True),
        ({"Precedence": "auto_reply"}, True),
        ({"Precedence": "first-class"}, False),
        ({}, False),
    ],
)
def test_auto_replies_are_known_by_their_rfc_3834_headers(headers, auto) -> None:
    assert is_auto_reply(reply("Thank you.", **headers)) is auto


def test_the_heuristics_see_neither_quoted_lines_nor_an_attached_original() -> None:
    original = reply(f"Dear MP,\n{COMMENT}\n")
    msg = reply(f"Thank you.\n> {COMMENT}\nWe will reply.")
    msg.add_attachment(original)
    seen = own_text(msg)
    text = "".join(str(part.get_payload()) for part in seen.walk() if not part.is_multipart())
    assert "Thank you." in text and "We will reply." in text
    assert "Undeliverable" not in text
    assert COMMENT in msg.as_string()  # the message itself is left as it was
    assert read_bounce(parse(msg.as_bytes())) == []


def test_a_comment_copied_inline_is_at_most_a_signal() -> None:
    failures = read_bounce(parse(reply(f"Thank you.\n\n{COMMENT}\n").as_bytes()))
    assert [b.how for b in failures] == ["heuristic"]
    kept = verdict(failures, MP)
    assert kept.kind == "soft" and "a signal only" in kept.reason


def test_a_report_is_read_even_when_marked_auto_replied_as_postfix_marks_it() -> None:
    (failure,) = read_bounce(parse(report(Auto_Submitted="auto-replied")))
    assert (failure.kind, failure.how, failure.status) == ("hard", "dsn", "5.1.1")
    assert verdict([failure], "Real.Member.MP@Parliament.UK").kind == "hard"
    assert MP not in failure.reason


def test_a_report_for_another_address_or_a_temporary_one_is_soft() -> None:
    (other,) = read_bounce(parse(report(final_recipient="someone@parliament.uk")))
    assert verdict([other], MP).kind == "soft"
    (later,) = read_bounce(parse(report(status="4.2.2")))
    assert verdict([later], MP).kind == "soft"
    assert verdict([other], None).kind == "soft"  # a scrubbed letter: nothing to compare


def test_a_report_inside_an_attached_message_is_not_read() -> None:
    wrapper = reply("See the attached.")
    wrapper.add_attachment(parse(report()))
    assert read_bounce(parse(wrapper.as_bytes())) == []


def test_kept_text_has_no_address_and_no_control_character() -> None:
    kept = without_addresses("550 5.1.1 <jo@example.org>\x00 gone\udcff\ttoo")
    assert kept == "550 5.1.1 <[address removed]> gone? too"


def test_a_bounce_names_addresses_as_the_supporters_module_normalises_them() -> None:
    bounce = Bounce("hard", "5.1.1", "5.1.1", "dsn", frozenset({"jo@example.org"}))
    assert bounce.names("Jo@Example.org") and not bounce.names(None)
