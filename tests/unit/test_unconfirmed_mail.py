"""Issue 25, "our mail as a phishing relay": anyone can type anyone's address into the form, so
an email to an address nobody has confirmed (the confirmation, its reminder, "you have already
signed") carries nothing the signer typed, in any language: no name (not even in To), no
comment, no own-words letter, no address, and no link but our own on ``DEARMP_BASE_URL``.
"""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from services.mailer import compose
from shared.campaigns import Campaign
from shared.config import Settings
from shared.i18n import LANGUAGES
from shared.mail import smtp_bytes
from shared.messages import Supporter

BASE_URL = "https://dearmp.test"
SETTINGS = Settings(
    mail_domain="dearmp.example",
    sandbox_to="sandbox@example.org",
    base_url=BASE_URL,
    secret_key="unit-test-secret-0123456789",
)
SID = uuid.UUID("12345678-1234-5678-1234-567812345678")
CONFIRM_URL = f"{BASE_URL}/confirm/token-1"

# What a stranger puts in the form to make us carry their message to a victim's address.
FIRST = "Claim your prize"
LAST = "at evil dot example"
COMMENT = "Win a prize at https://evil.example/win and call 0800 000 000"
OWN_WORDS = "Your account is locked: log in at http://evil.example/login within 24 hours"
ADDRESS = ["Reply with your bank details", "Prizetown"]
TYPED = [FIRST, LAST, COMMENT, OWN_WORDS, *ADDRESS, "evil", "prize", "bank details", "locked"]

BODY = (
    "Dear {{ target.name }},\n\n"
    "{% block message -%}\nPlease protect {{ campaign.title }}.\n{%- endblock %}\n"
    "{% if supporter.comment %}\n{{ supporter.comment }}\n{% endif %}\n"
    "Yours sincerely,\n\n{{ supporter.full_name }}\n{{ supporter.address }}\n"
)


def campaign(kind: str) -> Campaign:
    target: dict[str, object] = {"kind": kind}
    if kind != "mp":
        target |= {"name": "The Home Secretary", "email": "hs@example.org"}
    return Campaign.model_validate(
        {
            "slug": "camp",
            "title": "Guardians for children",
            "target": target,
            "letter": {
                "subject": "About {{ supporter.last_name }}",
                "body": BODY,
                "html": "{% block message %}<p>Please.</p>{% endblock %}<p>{{ supporter.comment }}"
                " {{ supporter.full_name }}</p>",
                "editable": True,
            },
        }
    )


def stranger(language: str) -> Supporter:
    return Supporter(
        first_name=FIRST,
        last_name=LAST,
        email="victim@example.org",
        postcode="GU11 1AA",
        address_lines=ADDRESS,
        comment=COMMENT,
        letter=OWN_WORDS,
        language=language,  # type: ignore[arg-type]
    )


Build = Callable[[Supporter, Campaign], EmailMessage]
BEFORE_CONFIRMATION: dict[str, Build] = {
    "confirmation": lambda s, c: compose.confirmation(SID, c, s, CONFIRM_URL, SETTINGS),
    "reminder": lambda s, c: compose.confirmation(
        SID, c, s, f"{BASE_URL}/confirm/token-2", SETTINGS, reminder=True
    ),
    "repeat": lambda s, c: compose.already_signed(SID, c, s, "sent", "Real Member", SETTINGS),
}


def parse(msg: EmailMessage) -> EmailMessage:
    data = smtp_bytes(msg) or msg.as_bytes(policy=email.policy.SMTP)
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def everything_a_reader_sees(msg: EmailMessage) -> str:
    """Every header (decoded) and every part's text (decoded), one string."""
    headers = "\n".join(f"{name}: {value}" for name, value in msg.items())
    parts = [
        str(part.get_content())
        for part in msg.walk()
        if not part.is_multipart() and part.get_content_maintype() == "text"
    ]
    return "\n".join([headers, *parts])


LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)\S*")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["mp", "fixed", "both"])
@pytest.mark.parametrize("purpose", BEFORE_CONFIRMATION)
def test_an_email_to_an_unconfirmed_address_carries_nothing_the_signer_typed(
    purpose: str, kind: str, language: str
) -> None:
    parsed = parse(BEFORE_CONFIRMATION[purpose](stranger(language), campaign(kind)))
    seen = everything_a_reader_sees(parsed)
    for typed in TYPED:
        assert typed.lower() not in seen.lower(), (purpose, kind, language, typed)
    links = LINK.findall(seen)
    assert links, "our own link is there"
    assert all(link.startswith(f"{BASE_URL}/") for link in links), links
    assert parsed["To"].addresses[0].display_name == ""  # not even a name beside the address
    assert parsed["To"].addresses[0].addr_spec == "victim@example.org"
    assert parsed.get_body(("html",)) is None
    # The campaign is named (organisations are vetted), and the page behind the link is ours.
    assert "Guardians for children" in str(parsed["Subject"])
    text = text_of(parsed)
    assert (CONFIRM_URL in text) == (purpose == "confirmation")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_greeting_names_nobody_in_any_language(language: str) -> None:
    hello = {"en": "Hello,", "cy": "Helo,", "fr": "Bonjour,"}[language]
    for purpose, build in BEFORE_CONFIRMATION.items():
        text = text_of(parse(build(stranger(language), campaign("mp"))))
        assert text.startswith(f"{hello}\n\n"), (purpose, text[:40])


def test_the_confirmation_says_the_letter_is_on_the_confirm_page() -> None:
    """Nothing is lost for the real supporter: the page behind the link shows the letter."""
    for language, words in (
        ("en", "shows the letter"),
        ("cy", "dangos y llythyr"),
        ("fr", "affiche la lettre"),
    ):
        built = compose.confirmation(
            SID, campaign("fixed"), stranger(language), CONFIRM_URL, SETTINGS
        )
        text = text_of(parse(built))
        assert words in text and "The Home Secretary" in text, (language, text)


def test_a_template_for_an_unconfirmed_address_cannot_reach_what_was_typed() -> None:
    """The rule is structural: the templates of these emails get no ``supporter`` at all, so a
    later edit that reaches for one fails to render (StrictUndefined) instead of sending it."""
    env = compose._templates("en")
    template = env.from_string("{{ supporter.first_name }}")
    context = compose.unconfirmed_context(campaign("mp"), {"confirm_url": CONFIRM_URL})
    with pytest.raises(Exception, match="supporter"):
        template.render(context)
