"""Building messages: sandbox redirection, and nothing a supporter types becomes a header."""

from __future__ import annotations

import email
import email.policy
import uuid

import pytest

from services.mailer import compose
from shared.campaigns import Campaign
from shared.config import Settings
from shared.mail import INTENDED_HEADER, delivery_recipients
from shared.messages import Supporter, Target

CAMPAIGN = Campaign.model_validate(
    {
        "slug": "camp",
        "title": "T",
        "target": {"kind": "mp"},
        "letter": {
            "subject": "About {{ supporter.last_name }}",
            "body": "Dear {{ target.name }},\n{{ supporter.comment }}\n{{ supporter.full_name }}\n",
        },
    }
)
SETTINGS = Settings(mail_domain="dearmp.example", sandbox_to="sandbox@example.org")
MP = Target(name="Real Member", email="real.member.mp@parliament.uk")


def supporter(**kw: str) -> Supporter:
    base = {
        "first_name": "Siân",
        "last_name": "Ó Briain",
        "email": "sian@example.org",
        "postcode": "GU11 1AA",
        "address_lines": ["1 Road"],
        "comment": "hello",
    }
    return Supporter(**{**base, **kw})


def parse(msg: email.message.EmailMessage) -> email.message.EmailMessage:
    return email.message_from_bytes(
        msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default
    )  # type: ignore[return-value]


def test_sandbox_never_addresses_a_real_mp() -> None:
    msg = compose.letter(uuid.uuid4(), CAMPAIGN, supporter(), MP, SETTINGS)
    to = delivery_recipients(msg, MP.email or "", live=False, sandbox_to=SETTINGS.sandbox_to)
    assert to == ["sandbox@example.org"]
    assert msg[INTENDED_HEADER] == "real.member.mp@parliament.uk"
    assert delivery_recipients(msg, MP.email or "", live=True, sandbox_to="x@y.z") == [MP.email]


def test_letter_headers_and_unicode_names_survive_a_round_trip() -> None:
    sid = uuid.uuid4()
    parsed = parse(compose.letter(sid, CAMPAIGN, supporter(last_name="王"), MP, SETTINGS))
    assert parsed["From"].addresses[0].display_name == "Siân 王 via Dear MP"
    assert parsed["From"].addresses[0].addr_spec == "letters@dearmp.example"
    assert parsed["Reply-To"].addresses[0].addr_spec == "sian@example.org"
    assert parsed["Message-ID"] == f"<letter.{sid}@dearmp.example>"
    assert parsed["Subject"] == "About 王"
    assert parsed["X-DearMP-Campaign"] == "camp" and parsed["Date"]
    assert parsed.get_content().replace("\r\n", "\n") == "Dear Real Member,\nhello\nSiân 王\n"


@pytest.mark.parametrize(
    "evil",
    [
        "Jo\r\nBcc: victim@example.com",
        "Jo\nTo: x@example.com",
        "=?utf-8?q?Jo=0D=0ABcc:_v@example.com?=",
        "Jo\u2028Bcc: v@example.com",
        "J" * 5000,
    ],
)
def test_header_injection_adds_no_header_or_recipient(evil: str) -> None:
    msg = compose.letter(
        uuid.uuid4(), CAMPAIGN, supporter(first_name=evil, last_name=evil), MP, SETTINGS
    )
    parsed = parse(msg)
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    assert len(parsed.get_all("To")) == 1 and len(parsed["To"].addresses) == 1
    assert parsed["To"].addresses[0].addr_spec == "real.member.mp@parliament.uk"
