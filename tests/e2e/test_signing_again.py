"""Every email to a supporter is in the language they signed in, while the letter stays in the
campaign's (English), through the real system and the API's ``language``. Signing again (squatting,
lost emails, a new postcode, already confirmed) is walked in a browser in
test_supporter_journeys.py."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from tests.support import (
    confirm,
    confirm_url_in,
    make_signature,
)

CAMPAIGN = "guardians-for-children"


def _sign(system: Any, signature: dict[str, Any]) -> None:
    response = httpx.post(
        f"{system.base_url}/api/v1/campaigns/{CAMPAIGN}/signatures", json=signature, timeout=10
    )
    assert response.status_code == 202, response.text


def _text(caught: Any) -> str:
    return str(caught.message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def _status(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT status FROM signatures")).scalar_one())


def test_emails_to_a_supporter_are_in_their_language_and_the_letter_in_english(
    system, mail
) -> None:
    system.start()
    _sign(system, {**make_signature(first_name="Siân"), "language": "cy"})
    confirmation = mail.handler.wait_for(1)[0]
    assert confirmation.message["Subject"].startswith("Cadarnhewch eich llofnod: ")
    assert _text(confirmation).startswith("Helo,")  # never the name typed (issue 25)
    client = httpx.Client(timeout=10)
    confirm(client, confirm_url_in(_text(confirmation)))
    caught = mail.handler.wait_for(3, timeout=30)
    letter = next(c for c in caught if "<letter." in str(c.message["Message-ID"]))
    copy = next(c for c in caught if "<copy." in str(c.message["Message-ID"]))
    assert _text(letter).startswith("Dear Alex Demo,")
    assert copy.message["Subject"].strip().startswith("Eich llythyr at Alex Demo:")
    assert "Dyma'r llythyr a anfonwyd gennym at Alex Demo" in _text(copy)
    # The copy holds the letter as the campaign wrote it; the office footer after it is for the
    # MP's office only (how to reply to the constituent, how to reach us).
    written, footer = _text(letter).split("\n\n-- \nSent by Dear MP on behalf of ", 1)
    assert "pressing Reply does" in footer and "pressing Reply does" not in _text(copy)
    assert written in _text(copy)

    _sign(system, {**make_signature(), "language": "fr"})
    french = mail.handler.wait_for(4, timeout=30)[3]
    assert french.message["Subject"].startswith("Confirmez votre signature : ")
