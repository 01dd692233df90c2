"""Signing again, as supporters and strangers do, through the real system: a stranger's pending
signature is replaced by the owner's (their old link stops working, and only the owner's words go);
a supporter whose postcode could not be used signs again and their letter goes; someone who
already confirmed gets an email saying where their letter went, never a second letter; and every
email to a supporter is in the language they signed in, while the letter stays in English."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from tests.support import (
    confirm,
    confirm_url_in,
    letters_by_purpose,
    make_signature,
    wait_until,
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


def test_a_strangers_pending_signature_is_replaced_by_the_owners(system, mail, engine) -> None:
    system.start()
    owner = "owner@example.org"
    stranger = make_signature(
        email=owner, first_name="Mallory", last_name="Stranger", comment="STRANGER'S WORDS"
    )
    _sign(system, stranger)
    squatted = mail.handler.wait_for(1)[0]
    # The owner's inbox shows exactly what a press of the button would send, in whose name.
    text = _text(squatted)
    assert "STRANGER'S WORDS" in text and "Mallory Stranger" in text
    assert "Not you?" in text
    old_link = confirm_url_in(text)
    client = httpx.Client(timeout=10)
    page = client.get(old_link)
    assert "STRANGER&#39;S WORDS" in page.text and "Mallory Stranger" in page.text
    assert "Not you?" in page.text

    # The owner, who never saw that email, signs with their own words: a fresh confirmation.
    _sign(system, make_signature(email=owner, first_name="Olu", comment="MY OWN WORDS"))
    fresh = mail.handler.wait_for(2)[1]
    assert "MY OWN WORDS" in _text(fresh) and "STRANGER" not in _text(fresh)
    assert client.get(old_link).status_code == 400  # the stranger's link no longer works
    confirm(client, confirm_url_in(_text(fresh)))
    caught = mail.handler.wait_for(4, timeout=30)
    letters = [c for c in caught if "<letter." in str(c.message["Message-ID"])]
    assert len(letters) == 1
    assert "MY OWN WORDS" in _text(letters[0]) and "STRANGER" not in _text(letters[0])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM signatures")).scalar_one() == 1
        # Only the newest signature is remembered for the reminder.
        pending = conn.execute(sa.text("SELECT count(*) FROM pending_confirmations")).scalar_one()
    assert pending == 1


def test_a_pending_supporter_who_lost_the_email_gets_a_new_one(system, mail) -> None:
    system.start()
    signature = make_signature()
    _sign(system, signature)
    _sign(system, signature)
    first, second = mail.handler.wait_for(2)
    assert confirm_url_in(_text(first)) != confirm_url_in(_text(second))
    client = httpx.Client(timeout=10)
    assert client.get(confirm_url_in(_text(first))).status_code == 400
    assert confirm(client, confirm_url_in(_text(second))).status_code == 200


def test_a_supporter_told_to_use_their_current_postcode_can(system, mail, engine) -> None:
    system.start()
    signature = make_signature(postcode="SW1A 9ZZ")  # a postcode no longer in use
    _sign(system, signature)
    client = httpx.Client(timeout=10)
    thanks = confirm(client, confirm_url_in(_text(mail.handler.wait_for(1)[0])))
    notice = mail.handler.wait_for(2, timeout=30)[1]
    assert "Sign again with your current postcode" in _text(notice)
    wait_until(lambda: _status(engine) == "unresolvable", 20, message="intake to hear why")
    page = client.get(str(thanks.url))
    assert "Sign again with your current postcode" in page.text

    _sign(system, {**signature, "postcode": "GU11 1AA"})
    fresh = mail.handler.wait_for(3, timeout=30)[2]
    assert "GU11 1AA" in _text(fresh)
    confirm(client, confirm_url_in(_text(fresh)))
    caught = mail.handler.wait_for(5, timeout=30)
    letters = letters_by_purpose(caught)
    assert len(letters["letter"]) == 1 and len(letters["copy"]) == 1
    wait_until(lambda: _status(engine) == "sent", 20, message="intake to hear letter.sent")


def test_someone_who_already_confirmed_is_told_where_their_letter_went(
    system, mail, engine
) -> None:
    system.start()
    signature = make_signature()
    _sign(system, signature)
    client = httpx.Client(timeout=10)
    confirm(client, confirm_url_in(_text(mail.handler.wait_for(1)[0])))
    mail.handler.wait_for(3, timeout=30)  # the confirmation, the letter, the copy
    wait_until(lambda: _status(engine) == "sent", 20, message="intake to hear letter.sent")

    # The API answers exactly as for a first signature: the page stays neutral.
    _sign(system, {**signature, "comment": "a second go"})
    again = mail.handler.wait_for(4, timeout=30)[3]
    assert again.message["Subject"].startswith("You have already signed: ")
    assert "Your letter went to Alex Demo on" in _text(again)
    wait_until(lambda: len(mail.messages) >= 4, 5)
    assert len(letters_by_purpose(mail.messages)["letter"]) == 1
    with engine.connect() as conn:
        comment = conn.execute(sa.text("SELECT comment FROM signatures")).scalar_one()
    assert comment == ""  # the confirmed signature is left as it was


def test_emails_to_a_supporter_are_in_their_language_and_the_letter_in_english(
    system, mail
) -> None:
    system.start()
    _sign(system, {**make_signature(first_name="Siân"), "language": "cy"})
    confirmation = mail.handler.wait_for(1)[0]
    assert confirmation.message["Subject"].startswith("Cadarnhewch eich llofnod: ")
    assert _text(confirmation).startswith("Annwyl Siân,")
    client = httpx.Client(timeout=10)
    confirm(client, confirm_url_in(_text(confirmation)))
    caught = mail.handler.wait_for(3, timeout=30)
    letter = next(c for c in caught if "<letter." in str(c.message["Message-ID"]))
    copy = next(c for c in caught if "<copy." in str(c.message["Message-ID"]))
    assert _text(letter).startswith("Dear Alex Demo,")
    assert copy.message["Subject"].strip().startswith("Eich llythyr at Alex Demo:")
    assert "Dyma'r llythyr a anfonwyd gennym at Alex Demo" in _text(copy)
    assert _text(letter) in _text(copy)

    _sign(system, {**make_signature(), "language": "fr"})
    french = mail.handler.wait_for(4, timeout=30)[3]
    assert french.message["Subject"].startswith("Confirmez votre signature : ")
