"""Issue 26: an update email's From is one address whatever its name (the fan-out's own bytes,
``wire.py``, and the email package's), and its text part carries the Markdown written out as
plain text, not as markup."""

from __future__ import annotations

import email
import email.policy
import uuid

from services.updates.compose import Recipient, UpdateContent, UpdateMail
from services.updates.wire import WireFormat
from shared.config import Settings

SETTINGS = Settings(mail_domain="dearmp.example", secret_key="unit-test-secret-0123456789")
SENDER = "Children First: the charity for trafficked and unaccompanied children via Dear MP"
TITLE = "Children first: guardians, now and always, for every trafficked child"
BODY = (
    "# Good news\n\nWe **won** a debate. Read [the record](https://example.org/h) and *thank* "
    "your MP.\n\n- one\n- two\n\n1. first\n2. second\n\n> a quote\n"
)


def content() -> UpdateContent:
    return UpdateContent("camp", TITLE, 3, "A: b, c", BODY, SENDER)


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_the_fanouts_bytes_and_the_email_package_give_one_from_address() -> None:
    mail = UpdateMail(content(), SETTINGS)
    recipient = Recipient(1, uuid.uuid4(), "sub@example.org", "Jo")
    wired = WireFormat(mail).render("sub@example.org", mail.copy_for(recipient), None)
    assert wired is not None
    built = mail.build(recipient).as_bytes(policy=email.policy.SMTP)
    for data in (wired, built):
        msg = parsed(data)
        [sender] = msg["From"].addresses
        assert not msg["From"].defects
        assert " ".join(sender.display_name.split()) == SENDER
        assert sender.addr_spec == "updates@dearmp.example"


def test_the_text_part_has_the_markdown_written_out() -> None:
    mail = UpdateMail(content(), SETTINGS)
    msg = parsed(mail.build(Recipient(1, uuid.uuid4(), "sub@example.org", "Jo")).as_bytes())
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "**" not in text and "](" not in text and "# Good" not in text
    assert "We won a debate. Read the record (https://example.org/h) and thank your MP." in text
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<strong>won</strong>" in html


def test_markdown_as_text_keeps_the_shape_of_the_words() -> None:
    from services.updates.plain_text import markdown_as_text

    assert markdown_as_text(BODY) == (
        "Good news\n=========\n\n"
        "We won a debate. Read the record (https://example.org/h) and thank your MP.\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n> a quote"
    )
    assert markdown_as_text("<script>x</script> & <b>") == "<script>x</script> & <b>"
    assert markdown_as_text("[https://a.example](https://a.example)") == "https://a.example"
