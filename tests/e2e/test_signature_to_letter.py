"""Must-show 1: a signature posted to intake becomes one letter, to the right MP, at real SMTP."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from services.mailer.models import letters
from tests.support import confirm, confirm_url_in, make_signature, wait_until


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
    assert body in copy.message.get_body(("plain",)).get_content().replace("\r\n", "\n")

    # The journey is recorded, and confirming again sends nothing more.
    assert confirm(client, link).status_code == 200
    wait_until(lambda: _status(engine) == "sent", 20, message="intake to hear letter.sent")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(letters.c.purpose, letters.c.state, letters.c.sends)).all()
    assert sorted(rows) == [("confirmation", "sent", 1), ("copy", "sent", 1), ("letter", "sent", 1)]
    assert len(mail.messages) == 3
    thanks = client.get(str(thanks.url))
    assert "Your letter is going to Alex Demo, MP for Aldershot." in thanks.text


def _status(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT status FROM signatures")).scalar_one())
