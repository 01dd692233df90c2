"""Issue 25, "our mail as a phishing relay", against the real intake, relay and mailer (Postgres,
RabbitMQ, an SMTP catcher): a stranger signs with a victim's address, their own text and link in
the comment, the own-words letter, the name and the address, in English, Welsh and French. The
confirmation, its reminder a moment later and the "you have already signed" email reach the
victim carrying none of it, and no link but our own; the pending row kept for the reminder holds
no name.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import sqlalchemy as sa

from services.mailer.models import pending_confirmations
from shared.i18n import LANGUAGES
from tests.support import (
    confirm,
    confirm_url_in,
    letters_by_purpose,
    make_signature,
    post_signatures,
    wait_until,
)

MP_CAMPAIGN = "guardians-for-children"  # comment
OWN_WORDS_CAMPAIGN = "specialist-support-for-child-victims"  # fixed target, editable letter
FIRST, LAST = "Claim your prize", "at evil dot example"
COMMENT = "Win a prize at https://evil.example/win and call 0800 000 000"
OWN_WORDS = "Your account is locked: log in at http://evil.example/login within 24 hours"
ADDRESS_LINE, TOWN = "Reply with your bank details", "Prizetown"
TYPED = [FIRST, LAST, COMMENT, OWN_WORDS, ADDRESS_LINE, TOWN, "evil", "prize", "locked"]
LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)\S*")


def stranger(email: str, language: str, *, own_words: bool) -> dict[str, Any]:
    signature = make_signature(
        email=email,
        first_name=FIRST,
        last_name=LAST,
        comment=COMMENT,
        address_line1=ADDRESS_LINE,
        town=TOWN,
        letter=OWN_WORDS if own_words else None,
    )
    return {**signature, "language": language}


def seen(caught: Any) -> str:
    """Every header and every text part of a caught email, decoded."""
    msg = caught.message
    headers = "\n".join(f"{name}: {value}" for name, value in msg.items())
    parts = [str(p.get_content()) for p in msg.walk() if p.get_content_maintype() == "text"]
    return "\n".join([headers, *parts])


def test_a_stranger_cannot_make_us_carry_their_words_to_a_victim(system, mail, engine) -> None:
    system.start("relay", "intake")
    system.services["mailer"].start(
        {"DEARMP_REMINDER_AFTER_SECONDS": "2", "DEARMP_REMINDER_SWEEP_SECONDS": "0.3"}
    ).wait_started()
    base = system.base_url
    # An address whose owner signed and confirmed: signing again gets "you already signed".
    owner = make_signature(email="owner@example.org")
    post_signatures(base, MP_CAMPAIGN, [owner])
    first = wait_until(lambda: list(mail.messages), 60, 0.2, "the owner's confirmation")[0]
    with httpx.Client(timeout=30) as client:
        assert confirm(client, confirm_url_in(seen(first))).status_code == 200

    for language in LANGUAGES:
        post_signatures(
            base, MP_CAMPAIGN, [stranger(f"mp-{language}@example.org", language, own_words=False)]
        )
        post_signatures(
            base,
            OWN_WORDS_CAMPAIGN,
            [stranger(f"words-{language}@example.org", language, own_words=True)],
        )
        post_signatures(
            base, MP_CAMPAIGN, [stranger("owner@example.org", language, own_words=False)]
        )

    def arrived() -> dict[str, list[str]] | None:
        by_purpose = letters_by_purpose(list(mail.messages))
        counts = {p: len(by_purpose.get(p, [])) for p in ("confirmation", "reminder", "repeat")}
        # The owner's confirmation and the strangers' six; six reminders at least (the owner's
        # may come too if they confirmed late); three "already signed".
        enough = counts["confirmation"] >= 7 and counts["reminder"] >= 6 and counts["repeat"] >= 3
        return by_purpose if enough else None

    wait_until(arrived, 90, 0.2, "the confirmations, reminders and 'already signed' emails")
    victims = {f"{p}-{lang}@example.org" for p in ("mp", "words") for lang in LANGUAGES}
    checked = 0
    for caught in list(mail.messages):
        to = caught.message["X-DearMP-Intended-Recipient"]
        if to == "owner@example.org" and "<confirmation." in str(caught.message["Message-ID"]):
            continue  # the owner's own signature, typed by the owner
        assert to in victims | {"owner@example.org"}, to
        text = seen(caught)
        for typed in TYPED:
            assert typed.lower() not in text.lower(), (caught.message["Message-ID"], typed)
        links = LINK.findall(text)
        assert links and all(link.startswith(f"{base}/") for link in links), links
        assert caught.message["To"].addresses[0].display_name == ""
        checked += 1
    assert checked >= 15
    # Every language arrived in its own words (the greeting names nobody).
    greetings = {
        str(c.message.get_body(("plain",)).get_content()).split("\n", 1)[0].strip()
        for c in mail.messages
    }
    assert {"Hello,", "Helo,", "Bonjour,"} <= greetings, greetings

    # What the mailer keeps for the reminder: the address and the language, no name.
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(pending_confirmations.c.first_name, pending_confirmations.c.last_name)
        ).all()
    assert kept and all(row == ("", "") for row in kept), kept
