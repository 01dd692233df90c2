"""Update emails: what each copy says and carries, written fast (``wire``) or built by the email
package (``build``), which must read the same to a mail client."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from email.message import EmailMessage

import pytest

from services.updates.compose import Recipient, UpdateContent, UpdateMail
from services.updates.wire import WireFormat
from shared.config import Settings
from shared.mail import INTENDED_HEADER
from shared.tokens import InvalidToken, make_token
from shared.unsubscribe import read_unsubscribe_token

SETTINGS = Settings(
    secret_key="unit-test-secret-0123456789",
    base_url="https://dearmp.example.org",
    mail_domain="campaigns.example.org",
)
CONTENT = UpdateContent(
    campaign="guardians-for-children",
    campaign_title="Guardians for children",
    number=4,
    title="We met the minister <today>",
    body="It went **well**.\n\n<script>alert('x')</script>\n\n- [the report](https://example.org)",
)


def recipient(**changes: object) -> Recipient:
    values: dict[str, object] = {
        "delivery_id": 1,
        "signature_id": uuid.UUID("6b2b7e59-1111-4c3e-9d1e-4f1f0b0a0a01"),
        "email": "jo.bloggs+news@example.org",
        "first_name": "Siân <&>",
    }
    values.update(changes)
    return Recipient(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def wired(mail: UpdateMail, who: Recipient, intended: str | None = None) -> EmailMessage:
    data = WireFormat(mail).render(who.email, mail.copy_for(who), intended)
    assert data is not None
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    return parse(data)


def test_a_copy_carries_one_click_unsubscribe_and_a_stable_message_id() -> None:
    mail = UpdateMail(CONTENT, SETTINGS)
    msg = wired(mail, recipient())
    assert str(msg["From"]) == "Dear MP <updates@campaigns.example.org>"
    assert str(msg["To"]) == "jo.bloggs+news@example.org"
    assert str(msg["Subject"]) == "Update #4: We met the minister <today>"
    assert str(msg["Message-ID"]) == (
        "<update.guardians-for-children.4.6b2b7e59-1111-4c3e-9d1e-4f1f0b0a0a01"
        "@campaigns.example.org>"
    )
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    https, mailto = (part.strip(" <>") for part in str(msg["List-Unsubscribe"]).split(","))
    assert https.startswith("https://dearmp.example.org/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@campaigns.example.org?subject=unsubscribe%20")
    token = https.rsplit("/", 1)[1]
    assert mailto.endswith(token)
    found = read_unsubscribe_token(SETTINGS.secret_key, token)
    assert (found.signature_id, found.campaign) == (recipient().signature_id, CONTENT.campaign)
    # A copy made again (after a crash) has the same id.
    assert str(wired(mail, recipient())["Message-ID"]) == str(msg["Message-ID"])


def test_the_body_is_text_and_safe_html() -> None:
    mail = UpdateMail(CONTENT, SETTINGS)
    msg = wired(mail, recipient())
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hello Siân <&>,")
    assert "It went well." in text and "/unsubscribe/" in text
    assert "Hello Siân &lt;&amp;&gt;," in html
    assert "<strong>well</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://example.org">the report</a>' in html
    assert "We met the minister &lt;today&gt;" in html
    assert 'href="https://dearmp.example.org/unsubscribe/' in html


def test_the_fast_copy_reads_like_the_built_one() -> None:
    mail = UpdateMail(CONTENT, SETTINGS)
    who = recipient()
    fast = wired(mail, who)
    built = parse(mail.build(who).as_bytes())
    for name in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe-Post", "List-Id"):
        assert str(fast[name]).strip() == str(built[name]).strip(), name
    for kind in ("plain", "html"):
        # The unsubscribe token carries the second it was made: the two copies may straddle one.
        assert _untimed(fast.get_body((kind,)).get_content()) == _untimed(  # type: ignore[union-attr]
            built.get_body((kind,)).get_content()  # type: ignore[union-attr]
        )


def _untimed(text: str) -> str:
    return re.sub(r"/unsubscribe/[A-Za-z0-9_.\-]+", "/unsubscribe/TOKEN", text)


def test_sandbox_header_names_the_intended_recipient() -> None:
    mail = UpdateMail(CONTENT, SETTINGS)
    who = recipient()
    assert wired(mail, who, intended=who.email)[INTENDED_HEADER] == who.email


@pytest.mark.parametrize(
    "address",
    [
        "siân@example.org",  # needs SMTPUTF8
        '"jo bloggs"@example.org',
        "jo@example.org\r\nBcc: victim@example.org",
        "jo@localhost",
        "jo..bloggs@example.org",
    ],
)
def test_addresses_the_fast_path_will_not_write(address: str) -> None:
    mail = UpdateMail(CONTENT, SETTINGS)
    who = recipient(email=address)
    assert WireFormat(mail).render(address, mail.copy_for(who), None) is None


def test_unsubscribe_tokens_are_for_unsubscribing_only() -> None:
    secret = SETTINGS.secret_key
    confirm = make_token(secret, "confirm", str(uuid.uuid4()))
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(secret, confirm)
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(secret, make_token(secret, "unsubscribe", "not-a-uuid/campaign"))
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(
            "another-secret-0123456789", UpdateMail(CONTENT, SETTINGS).token(recipient())
        )


@pytest.mark.parametrize(
    ("language", "subject", "greeting", "footer"),
    [
        ("cy", "Diweddariad #4: ", "Helo Siân <&>,", "I atal yr e-byst hyn"),
        ("fr", "Actualité nº 4 : ", "Bonjour Siân <&>,", "Pour ne plus recevoir ces e-mails"),
    ],
)
def test_a_copy_is_in_its_subscribers_language_and_the_update_as_written(
    language: str, subject: str, greeting: str, footer: str
) -> None:
    """The subject's words, the greeting and the footer in the language the subscriber signed
    in; the update itself as staff wrote it. The same update, in English, for the next one."""
    mail = UpdateMail(CONTENT, SETTINGS)
    for built in (
        mail.build(recipient(language=language)),
        wired(mail, recipient(language=language)),
    ):
        assert str(built["Subject"]) == f"{subject}We met the minister <today>"
        text = str(built.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert text.startswith(greeting) and footer in text
        assert "It went well." in text
        html = str(built.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert f'<html lang="{language}">' in html
    english = wired(mail, recipient())
    assert str(english["Subject"]) == "Update #4: We met the minister <today>"


def test_a_copy_is_from_the_campaigns_organisation_both_ways() -> None:
    from dataclasses import replace

    mail = UpdateMail(replace(CONTENT, sender_name="ECPAT UK via Dear MP"), SETTINGS)
    expected = "ECPAT UK via Dear MP <updates@campaigns.example.org>"
    assert str(wired(mail, recipient())["From"]) == expected
    assert str(mail.build(recipient())["From"]) == expected
