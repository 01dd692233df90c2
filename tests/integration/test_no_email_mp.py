"""Issue 26: an MP with no published email is no dead end. The resolver keeps the MP's name and
seat, the "we could not send it" email names them, gives the House of Commons postal address and
says how to post the letter (not "sign again", which would end the same way), and intake serves
the letter as a PDF at ``/thanks/{token}/letter.pdf``. Real Postgres, RabbitMQ and SMTP catcher."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa

from services.intake.models import signatures
from services.mailer import compose
from shared.campaigns import get_campaign
from shared.messages import Supporter
from shared.reference import mps
from shared.tokens import THANKS, make_token
from tests.support import confirm_email, make_signature, wait_until

pytestmark = pytest.mark.integration
SLUG = "guardians-for-children"
ALDERSHOT = "E14001063"  # the demo data's seat for GU11 1AA: Alex Demo


def _text(caught) -> str:
    return str(caught.message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def _purpose(mail, purpose: str) -> list:
    return [c for c in mail.messages if str(c.message["Message-ID"]).startswith(f"<{purpose}.")]


def test_the_supporter_is_told_whom_to_post_the_letter_to_and_gets_it_as_a_pdf(
    system, mail, engine, settings
) -> None:
    with engine.begin() as conn:
        conn.execute(mps.update().where(mps.c.constituency_code == ALDERSHOT).values(email=None))
    system.start()
    signature = make_signature(
        first_name="Morwenna",
        last_name="Tregarthen",
        address_line1="12 Quayside Row",
        comment="My cousin came here alone at fourteen.",
    )
    url = f"{system.base_url}/api/v1/campaigns/{SLUG}/signatures"
    assert httpx.post(url, json=signature, timeout=10).status_code == 202
    [confirmation] = wait_until(lambda: _purpose(mail, "confirmation"), 60, 0.2, "confirmation")
    confirm_email(confirmation.message)

    [notice] = wait_until(lambda: _purpose(mail, "unresolvable"), 60, 0.2, "the notice")
    text = _text(notice)
    assert "Your MP is Alex Demo, the Member of Parliament for Aldershot." in text
    assert "Alex Demo MP\nHouse of Commons\nLondon\nSW1A 0AA\n" in text
    assert "post it (with a stamp)" in text
    assert "sign again" not in text.lower()
    with engine.connect() as conn:
        row = conn.execute(sa.select(signatures)).one()
    assert (row.status, row.unresolvable_reason) == ("unresolvable", "no_contact")
    assert (row.target_name, row.constituency_name, row.constituency_code) == (
        "Alex Demo",
        "Aldershot",
        ALDERSHOT,
    )
    token = make_token(settings.secret_key, THANKS, str(row.id))
    letter_url = f"{system.base_url}/thanks/{token}/letter.pdf"
    assert letter_url in text

    pdf = httpx.get(letter_url, timeout=60)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    assert pdf.content.startswith(b"%PDF-") and len(pdf.content) > 2000

    from services.intake.printable import printable_html

    found = printable_html(engine, row.id)
    assert found is not None
    html, mp = found
    assert mp == "Alex Demo"
    for words in (
        "Morwenna Tregarthen",
        "12 Quayside Row",
        "GU11 1AA",
        "Alex Demo MP",
        "House of Commons",
        "SW1A 0AA",
        "My cousin came here alone at fourteen.",
        "Dear Alex Demo",
    ):
        assert words in html, words

    # A forged token, and a signature with no letter to post, get a clear page, never a PDF.
    bad = httpx.get(f"{system.base_url}/thanks/not-a-token/letter.pdf", timeout=10)
    assert bad.status_code == 400 and "application/pdf" not in bad.headers["content-type"]
    other = make_token(settings.secret_key, THANKS, str(uuid.uuid4()))
    missing = httpx.get(f"{system.base_url}/thanks/{other}/letter.pdf", timeout=10)
    assert missing.status_code == 404 and "application/pdf" not in missing.headers["content-type"]


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("cy", "Eich AS yw Alex Demo, yr Aelod Seneddol dros Aldershot."),
        ("fr", "Votre député est Alex Demo, député de la circonscription de Aldershot."),
    ],
)
def test_the_notice_is_in_the_supporters_language(engine, settings, language, words) -> None:
    with engine.connect() as conn:
        campaign = get_campaign(conn, SLUG)
    assert campaign is not None
    supporter = Supporter(
        first_name="Siân",
        last_name="Owen",
        email="sian@example.org",
        postcode="GU11 1AA",
        language=language,
    )
    msg = compose.unresolvable_notice(
        uuid.uuid4(),
        campaign,
        supporter,
        "no_contact",
        "",
        settings,
        target_name="Alex Demo",
        constituency="Aldershot",
    )
    text = str(msg.get_body(("plain",)).get_content())
    assert words in text
    assert "House of Commons" in text and "/letter.pdf" in text


def test_without_weasyprint_the_letter_is_a_page_to_print(engine, settings, monkeypatch) -> None:
    """Where weasyprint's system libraries are missing, the supporter still gets the letter."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from services.intake import printable
    from services.intake.app import create_app
    from tests.integration.admin_helpers import make_signature_row

    now = datetime.now(UTC)
    row = make_signature_row(created_at=now, confirmed_at=now, status="unresolvable")
    row.update(supporter_key="k", unresolvable_reason="no_contact", target_name="Alex Demo")
    with engine.begin() as conn:
        conn.execute(signatures.insert().values(**row))

    def no_pango(html: str) -> bytes:
        raise OSError("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr(printable, "pdf_of", no_pango)
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    token = make_token(settings.secret_key, THANKS, str(row["id"]))
    answer = client.get(f"/thanks/{token}/letter.pdf")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "Alex Demo MP" in answer.text and "House of Commons" in answer.text
    assert "@page" in answer.text  # print styles


def test_the_remote_lookup_keeps_the_mp_with_no_email_and_the_event_names_them(engine) -> None:
    """postcodes.io and the Members API (stand-ins): the member's name and seat stay with the
    ``no_contact`` answer, and the resolver's ``signature.unresolvable`` carries them."""
    import requests

    from services.resolver.handlers import _answer_event
    from services.resolver.lookup import resolve
    from services.resolver.remote import CachedHttp, MembersApi, PostcodesIoBackend
    from shared.messages import SignatureConfirmed, SignatureUnresolvable
    from tests.fakes import FakeParliament, member

    seat = "Newcastle upon Tyne East and Wallsend"
    fake = FakeParliament(
        postcodes={"NE2 1AA": (seat, "E14001390")},
        seats={seat: member(4002, "Mary Quiet")},
        contacts={4002: [{"type": "Parliamentary office", "isPreferred": True, "email": None}]},
    ).start()
    try:
        http = CachedHttp(engine, requests.Session())
        http.timeout = (1, 1)
        answer = resolve(
            "NE2 1AA", None, [PostcodesIoBackend(http, fake.url, MembersApi(http, fake.url))]
        )
    finally:
        fake.stop()
    assert (answer.status, answer.reason) == ("unresolvable", "no_contact")
    assert answer.target is not None and answer.target.name == "Mary Quiet"
    assert answer.target.email is None
    confirmed = SignatureConfirmed(
        signature_id=uuid.uuid4(),
        campaign=SLUG,
        supporter=Supporter(
            first_name="Jo", last_name="B", email="jo@example.org", postcode="NE2 1AA"
        ),
    )
    event = _answer_event(confirmed, answer)
    assert isinstance(event, SignatureUnresolvable)
    assert event.target_name == "Mary Quiet"
    assert event.constituency is not None and event.constituency.name == seat
