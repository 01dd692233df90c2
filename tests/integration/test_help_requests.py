"""Issue 26: "Can't sign? Tell us" acknowledges the request to the person (in their language,
with nothing they typed), tells the organisation's owners and editors (not its viewers), and a
staff member's answer from the staff page goes to the person by email, From the organisation's
sender name, Reply-To the staff member. Real Postgres, RabbitMQ, relay, mailer and an SMTP
catcher; every email exactly once (its ``letters`` row), each in the outbox's event."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.admin.accounts import add_staff
from services.intake.admin.roles import Power, Role, can
from services.intake.app import create_app
from services.intake.models import help_requests
from services.mailer.models import letters
from shared.mail import INTENDED_HEADER
from shared.organisations import get_organisation, organisation_of
from tests.integration.admin_helpers import login
from tests.support import csrf_token_in, wait_until

pytestmark = pytest.mark.integration
SLUG = "guardians-for-children"
PASSWORD = "correct horse battery staple"
SECRET_WORDS = "Claim your prize at http://spam.example"


def _text(caught) -> str:
    return str(caught.message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def _to(caught) -> str:
    return str(caught.message[INTENDED_HEADER])


def _by_purpose(mail, purpose: str) -> list:
    return [c for c in mail.messages if str(c.message["Message-ID"]).startswith(f"<{purpose}.")]


def test_the_roles_told_are_those_who_can_answer() -> None:
    from services.intake.helprequests import TOLD

    assert set(TOLD) == {r.value for r in Role if can(r, Power.EDIT) and r != Role.OPERATOR}


def test_help_is_acknowledged_staff_are_told_and_a_reply_goes_by_email(
    system, mail, engine, settings
) -> None:
    with engine.connect() as conn:
        organisation = organisation_of(conn, SLUG)
        assert organisation
        org = get_organisation(conn, organisation)
        assert org is not None
    staff = {
        "owner": "owner-help@example.org",
        "editor": "editor-help@example.org",
        "viewer": "viewer-help@example.org",
    }
    for role, address in staff.items():
        add_staff(engine, address, PASSWORD, organisation=organisation, role=role)
    system.start("relay", "mailer", "intake")

    # The person, on the French page, cannot sign and tells us.
    person = f"cannot-sign-{uuid.uuid4().hex[:6]}@example.org"
    with httpx.Client(base_url=system.base_url, timeout=10) as browser:
        form = browser.get(f"/c/{SLUG}/help", headers={"Accept-Language": "fr"})
        assert form.status_code == 200
        sent = browser.post(
            f"/c/{SLUG}/help",
            headers={"Accept-Language": "fr"},
            data={
                "csrf_token": csrf_token_in(form.text),
                "name": "Prize Winner",
                "email": person,
                "message": f"My postcode is refused. {SECRET_WORDS}",
            },
        )
    assert sent.status_code == 200, sent.text

    [ack] = wait_until(lambda: _by_purpose(mail, "help_ack"), 60, 0.2, "the acknowledgement")
    assert _to(ack) == person
    assert ack.message["Subject"].startswith("Nous avons bien reçu votre message")
    assert "Prize" not in str(ack.message) and "spam.example" not in str(ack.message)
    assert "Prize" not in str(ack.message["To"])
    notices = wait_until(
        lambda: (found := _by_purpose(mail, "help_notice")) and len(found) >= 2 and found,
        60,
        0.2,
        "the staff notices",
    )
    assert sorted(_to(n) for n in notices) == [staff["editor"], staff["owner"]]
    with engine.connect() as conn:
        request = conn.execute(sa.select(help_requests)).one()
    assert request.language == "fr"
    for notice in notices:
        body = _text(notice)
        assert notice.message["Subject"].startswith("Someone needs help signing")
        assert f"/admin/c/{SLUG}/help/{request.public_id}" in body
        assert "spam.example" not in body and "postcode is refused" not in body

    # A viewer can read the request but not answer it; an editor answers.
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    login(client, email=staff["viewer"], password=PASSWORD)
    page = client.get(f"/admin/c/{SLUG}/help/{request.public_id}")
    assert page.status_code == 200 and SECRET_WORDS in page.text
    assert "Send the answer" not in page.text
    refused = client.post(
        f"/admin/c/{SLUG}/help/{request.public_id}/reply",
        data={"csrf_token": csrf_token_in(page.text), "answer": "Hello"},
    )
    assert refused.status_code == 403
    assert client.get(f"/admin/c/{SLUG}/help/not-a-request").status_code == 404
    assert client.get(f"/admin/c/{SLUG}/help/{uuid.uuid4()}").status_code == 404

    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    login(client, email=staff["editor"], password=PASSWORD)
    campaign_page = client.get(f"/admin/c/{SLUG}")
    assert f"/admin/c/{SLUG}/help/{request.public_id}" in campaign_page.text
    page = client.get(f"/admin/c/{SLUG}/help/{request.public_id}")
    token = csrf_token_in(page.text)
    empty = client.post(
        f"/admin/c/{SLUG}/help/{request.public_id}/reply",
        data={"csrf_token": token, "answer": "   "},
    )
    assert empty.status_code == 400 and "Write your answer" in empty.text
    answer = "Bonjour, votre code postal est nouveau : signez avec GU11 1AA.\n\nL'équipe"
    done = client.post(
        f"/admin/c/{SLUG}/help/{request.public_id}/reply",
        data={"csrf_token": token, "answer": answer},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "Your answer is on its way by email." in done.text
    assert answer.split("\n")[0] in done.text

    [reply] = wait_until(lambda: _by_purpose(mail, "help_reply"), 60, 0.2, "the reply")
    assert _to(reply) == person
    [sender] = reply.message["From"].addresses
    assert sender.display_name == org.sender_name and sender.addr_spec.startswith("hello@")
    [reply_to] = reply.message["Reply-To"].addresses
    assert reply_to.addr_spec == staff["editor"]
    body = _text(reply)
    assert body.startswith(answer)
    assert "Vous avez écrit à" in body  # the footer in the person's language
    with engine.connect() as conn:
        assert conn.execute(sa.select(help_requests.c.handled_at)).scalar_one() is not None
        assert conn.execute(sa.text("SELECT count(*) FROM help_replies")).scalar() == 1
        rows = Counter(
            conn.execute(
                sa.select(letters.c.purpose).where(letters.c.purpose.like("help_%"))
            ).scalars()
        )
    assert rows == {"help_ack": 1, "help_notice": 2, "help_reply": 1}
    # Each exactly once at the SMTP server.
    ids = Counter(str(c.message["Message-ID"]) for c in mail.messages)
    assert all(n == 1 for n in ids.values()), ids

    # Subject access holds the request and the answer sent; erasure removes both.
    from services.intake.admin.access import held_about
    from services.intake.handlers import HANDLERS
    from shared.handling import Dispatcher
    from shared.messages import Envelope, SupporterErasureRequested
    from shared.supporters import supporter_key

    record = held_about(engine, person, settings.secret_key)
    assert [r["body"] for r in record["help_replies"]] == [answer]
    assert record["help_requests"][0]["message"].startswith("My postcode is refused.")
    key = supporter_key(settings.secret_key, person)
    Dispatcher("intake", engine, HANDLERS)(Envelope.wrap(SupporterErasureRequested(key=key)))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM help_replies")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM help_requests")).scalar() == 0
    after = held_about(engine, person, settings.secret_key)
    assert after["help_requests"] == [] and after["help_replies"] == []  # intake's part
