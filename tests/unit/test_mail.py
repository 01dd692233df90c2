"""Building messages: sandbox redirection, and nothing a supporter types becomes a header."""

from __future__ import annotations

import email
import email.policy
import random
import string
import uuid
from email.headerregistry import Address

import pytest

from services.mailer import compose
from shared.campaigns import Campaign
from shared.config import Settings
from shared.mail import INTENDED_HEADER, POLICY, delivery_recipients
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
    letter, footer = parsed.get_content().replace("\r\n", "\n").split("\n-- \n")
    assert letter == "Dear Real Member,\nhello\nSiân 王\n"
    assert "To reply to Siân 王, write to sian@example.org" in footer


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


def _folded_both_ways(field: str, value: object) -> tuple[str, str]:
    header = POLICY.header_factory(field, value)
    package = email.policy.EmailPolicy(header_factory=POLICY.header_factory, linesep="\r\n")
    return POLICY.clone(linesep="\r\n").fold(field, header), package.fold(field, header)


@pytest.mark.parametrize("seed", range(4))
def test_fast_header_writing_matches_the_email_package(seed: int) -> None:
    """shared.mail writes short ASCII headers as they are and one non-ASCII display name as one
    encoded word: the result must parse back to exactly what the email package's own folding
    gives, and never be longer than a line."""
    rnd = random.Random(seed)
    names = "aâbcŵyzZÓ王 .,;:\"'()<>@\\-_=?!é \t\x85\u2028"
    for i in range(500):
        text = "".join(rnd.choice(string.printable[:95]) for _ in range(rnd.randint(1, 90)))
        for field in ("Subject", "X-DearMP-Campaign"):
            fast, package = _folded_both_ways(field, text)
            assert fast == package, (fast, package)
        name = "".join(rnd.choice(names) for _ in range(rnd.randint(0, 40)))
        for field in ("From", "To", "Reply-To"):
            fast, package = _folded_both_ways(field, Address(name, addr_spec=f"jo.{i}@example.org"))
            back = email.message_from_bytes(fast.encode(), policy=email.policy.default)[field]
            again = email.message_from_bytes(package.encode(), policy=email.policy.default)[field]
            assert back.addresses == again.addresses
            assert fast.count("\r\n") == 1 or fast == package
            assert all(len(line) <= 78 for line in fast.split("\r\n")) or fast == package


def test_the_from_name_keeps_via_dear_mp_however_long_the_name() -> None:
    from shared.mail import HEADER_TEXT_MAX, via_name

    assert via_name("Jo Bloggs") == "Jo Bloggs via Dear MP"
    longest = via_name("A" * 100 + " " + "B" * 100)  # the longest names the form takes
    assert longest.endswith(" via Dear MP") and len(longest) == HEADER_TEXT_MAX
    assert "\n" not in via_name("Jo\r\nBcc: x@example.org")
