"""Must-show 1: a signature posted to intake becomes one letter, to the right MP, at real SMTP;
and a letter the supporter edited arrives as they wrote it."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from services.mailer.models import letters
from tests.support import confirm, confirm_url_in, csrf_token_in, make_signature, wait_until


def test_signature_becomes_one_letter_to_the_demo_mp(system, mail, engine) -> None:
    system.start()
    signature = make_signature(
        postcode="gu11 1aa",
        first_name="Siân",
        last_name="Ó Briain",
        comment="My niece was one of these children.",
    )
    response = httpx.post(
        f"{system.base_url}/api/v1/campaigns/guardians-for-children/signatures",
        json=signature,
        timeout=10,
    )
    assert response.status_code == 202, response.text

    # The confirmation email arrives; its link shows a button, and only the POST confirms.
    confirmation = mail.handler.wait_for(1)[0].message
    assert confirmation["X-DearMP-Intended-Recipient"] == signature["email"]
    link = confirm_url_in(confirmation.get_body(("plain",)).get_content())
    page = httpx.get(link, timeout=10)
    assert page.status_code == 200 and "Confirm my signature" in page.text
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM signatures")).scalar_one() == "pending"
    client = httpx.Client(timeout=10)
    thanks = confirm(client, link)
    assert thanks.status_code == 200 and "Your signature is confirmed" in thanks.text

    caught = mail.handler.wait_for(2, timeout=30)
    letter = caught[1].message
    assert letter["X-DearMP-Intended-Recipient"] == "alex.demo.mp@demo-parliament.invalid"
    assert caught[1].rcpt_tos == ["sandbox@example.org"]  # sandbox: never the real target
    assert letter["Subject"] == "Please help give every trafficked child a guardian"
    assert letter["Reply-To"].addresses[0].addr_spec == signature["email"]
    assert "via Dear MP" in str(letter["From"]) and "Siân Ó Briain" in str(letter["From"])
    body = letter.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("Dear Alex Demo,")
    assert "My niece was one of these children." in body
    assert "1 Test Street\nAldershot\nGU11 1AA" in body

    # Then the supporter gets a copy of what was sent in their name.
    copy = mail.handler.wait_for(3, timeout=30)[2]
    assert copy.message["Message-ID"] == letter["Message-ID"].replace("<letter.", "<copy.")
    assert copy.message["X-DearMP-Intended-Recipient"] == signature["email"]
    assert "Alex Demo" in copy.message["Subject"]
    letter_only = body.split("\n-- \n")[0]  # the copy has the letter, not the office footer
    assert letter_only in copy.message.get_body(("plain",)).get_content().replace("\r\n", "\n")

    # The journey is recorded, and the used link confirms nothing more (it shows no button, and a
    # POST with the first page's token is harmless).
    again = client.get(link)
    assert again.status_code == 200 and "You have already confirmed" in again.text
    assert 'name="csrf_token"' not in again.text
    wait_until(lambda: _status(engine) == "sent", 20, message="intake to hear letter.sent")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(letters.c.purpose, letters.c.state, letters.c.sends)).all()
    assert sorted(rows) == [("confirmation", "sent", 1), ("copy", "sent", 1), ("letter", "sent", 1)]
    assert len(mail.messages) == 3
    thanks = client.get(str(thanks.url))
    assert "your letter went to Alex Demo, MP for Aldershot." in thanks.text


def _status(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT status FROM signatures")).scalar_one())


def test_a_letter_the_supporter_edited_is_the_letter_that_is_sent(system, mail, engine) -> None:
    """The editable campaign's form, as a supporter uses it: they rewrite the letter, confirm,
    and the Home Secretary's letter carries their words, as typed, between the greeting and
    their name and address."""
    system.start()
    slug = "specialist-support-for-child-victims"
    client = httpx.Client(base_url=system.base_url, timeout=10)
    page = client.get(f"/c/{slug}")
    assert page.status_code == 200 and 'name="letter"' in page.text
    words = (
        "Annwyl Ysgrifennydd Cartref — I work with children like these every day.\r\n"
        "They need {{ 7*7 }} more {% raw %}support workers, not <fewer>.\r\n\r\n"
        "请帮助他们。"
    )
    signature = make_signature(postcode="SW1A 1AA", first_name="Siân", last_name="Ó Briain")
    form = {k: str(v) for k, v in signature.items() if k != "opt_in"}
    sent = client.post(
        f"/c/{slug}/sign",
        data={**form, "consent": "yes", "letter": words, "csrf_token": csrf_token_in(page.text)},
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/c/{slug}/check-email"

    confirmation = mail.handler.wait_for(1)[0].message
    confirm(client, confirm_url_in(confirmation.get_body(("plain",)).get_content()))
    letter = mail.handler.wait_for(2, timeout=30)[1].message
    assert letter["X-DearMP-Intended-Recipient"] == "public.enquiries@homeoffice.gov.uk"
    assert letter["Subject"] == "Specialist support for every child victim of trafficking"
    text = letter.get_body(("plain",)).get_content().replace("\r\n", "\n")
    body, footer = text.split("\n-- \n")  # the office footer under the letter (issue 26)
    assert "on behalf of Siân Ó Briain" in footer
    assert body == (
        "Dear Home Secretary,\n\n"
        "Annwyl Ysgrifennydd Cartref — I work with children like these every day.\n"
        "They need {{ 7*7 }} more {% raw %}support workers, not <fewer>.\n\n"
        "请帮助他们。\n\n"
        "Yours sincerely,\n\n"
        "Siân Ó Briain\n1 Test Street\nAldershot\nSW1A 1AA\n"
    )
    copy = mail.handler.wait_for(3, timeout=30)[2].message
    assert body in copy.get_body(("plain",)).get_content().replace("\r\n", "\n")
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT letter FROM signatures")).scalar_one()
    assert stored == words.replace("\r\n", "\n")
