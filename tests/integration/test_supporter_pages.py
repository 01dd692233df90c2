"""What a supporter sees on the confirm and thank-you pages (issue 26): the language they signed
in when the link is opened from a mail app (no cookie), one stage at a time on the thank-you
page, British dates, nothing once they are erased; their words kept as typed; BF1 postcodes
recognised as forces addresses. Each test failed on the code before issue 26's change."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.handlers import HANDLERS
from services.intake.models import signatures
from services.mailer.models import letters
from shared.handling import Dispatcher
from shared.messages import Envelope, SupporterErasureRequested
from shared.states import SignatureStatus
from shared.supporters import supporter_key
from shared.tokens import make_token
from tests.integration.admin_helpers import make_signature_row
from tests.support import csrf_token_in, make_signature

SLUG = "guardians-for-children"
SENT_AT = datetime(2026, 12, 7, 22, 50, 43, tzinfo=UTC)


def _client(settings: Any, engine: sa.Engine) -> TestClient:
    """A fresh client: no cookie, as a link opened from a mail app."""
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def _text(page: str) -> str:
    """The page's words, tags and script removed, whitespace squeezed."""
    body = re.sub(r"<head>.*?</head>|<[^>]+>", " ", page, flags=re.S)
    return " ".join(html.unescape(body).split())


def _status_text(page: str) -> str:
    found = re.search(r'<div role="status"[^>]*>(.*?)</div>', page, re.S)
    return _text(found.group(1)) if found else ""


def _row(engine: sa.Engine, language: str = "en", **values: Any) -> uuid.UUID:
    now = datetime.now(UTC)
    row = make_signature_row(created_at=now, confirmed_at=now)
    row.update({"language": language, "supporter_key": f"k{uuid.uuid4().hex}", **values})
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [row])
    return row["id"]  # type: ignore[no-any-return]


def _thanks(settings: Any, signature_id: uuid.UUID) -> str:
    return f"/thanks/{make_token(settings.secret_key, 'thanks', str(signature_id))}"


def _sign(client: TestClient, engine: sa.Engine, language: str, **changes: Any) -> uuid.UUID:
    signed = {**make_signature(**changes), "language": language}
    response = client.post(f"/api/v1/campaigns/{SLUG}/signatures", json=signed)
    assert response.status_code == 202, response.text
    with engine.connect() as conn:
        return conn.execute(  # type: ignore[no-any-return]
            sa.select(signatures.c.id).where(signatures.c.email == signed["email"])
        ).scalar_one()


# --- the language travels with the signature ------------------------------------------------


def test_links_opened_without_a_cookie_speak_the_language_signed_in(settings, engine) -> None:
    signature_id = _sign(_client(settings, engine), engine, "fr")
    link = f"/confirm/{make_token(settings.secret_key, 'confirm', str(signature_id))}"
    english_browser = {"Accept-Language": "en-GB,en;q=0.9"}

    # The confirmation link, opened from the mail app (no cookie, an English browser).
    browser = _client(settings, engine)
    confirm_page = browser.get(link, headers=english_browser)
    assert confirm_page.status_code == 200
    assert confirm_page.headers["content-language"] == "fr"
    assert "Confirmer ma signature" in confirm_page.text
    assert "Confirm my signature" not in confirm_page.text
    thanks = browser.post(
        link,
        data={"csrf_token": csrf_token_in(confirm_page.text)},
        headers=english_browser,
        follow_redirects=True,
    )
    assert thanks.headers["content-language"] == "fr"
    assert "Votre signature est confirmée" in thanks.text

    # The thank-you link, later, from another cookieless browser; the used confirm link too.
    later = _client(settings, engine)
    page = later.get(_thanks(settings, signature_id), headers=english_browser)
    assert page.headers["content-language"] == "fr" and "Nous recherchons votre député" in page.text
    used = later.get(link, headers=english_browser)
    assert used.headers["content-language"] == "fr" and "Your signature" not in used.text

    # An explicit choice still wins: ?lang= (remembered in the cookie), then the cookie.
    chooser = _client(settings, engine)
    welsh = chooser.get(f"{_thanks(settings, signature_id)}?lang=cy", headers=english_browser)
    assert welsh.headers["content-language"] == "cy"
    assert chooser.get(_thanks(settings, signature_id)).headers["content-language"] == "cy"
    english = _client(settings, engine).get(f"{_thanks(settings, signature_id)}?lang=en")
    assert english.headers["content-language"] == "en" and "We are finding your MP" in english.text


# --- one stage at a time ---------------------------------------------------------------------


def test_a_sent_letter_is_not_also_going_and_its_date_is_british(settings, engine) -> None:
    signature_id = _row(
        engine,
        status=SignatureStatus.SENT,
        target_name="Alex Demo",
        sent_at=SENT_AT,
    )
    client = _client(settings, engine)
    words = {
        lang: _status_text(client.get(f"{_thanks(settings, signature_id)}?lang={lang}").text)
        for lang in ("en", "cy", "fr")
    }
    assert words["en"] == (
        "On 7 December 2026 your letter went to Alex Demo, MP for Aldershot. "
        "We have emailed you a copy."
    )
    for said in words.values():
        assert "Alex Demo" in said
    for going in ("is going to", "yn mynd at", "va être envoyée"):
        assert not any(going in said for said in words.values()), words
    assert "7 Rhagfyr 2026" in words["cy"] and "7 décembre 2026" in words["fr"]
    assert "December 7" not in words["en"]


def _queue(engine: sa.Engine, signature_id: uuid.UUID, day: date, *, digest: bool) -> None:
    """The mailer's row for a letter that waits for its day (services/mailer/scheduled.py)."""
    # A digest's row of the letter, or (the cap) its whole message: never both.
    waits = {"digest_entry": {"name": "Jo Bloggs"}} if digest else {"held_message": "a message"}
    with engine.begin() as conn:
        conn.execute(
            letters.insert().values(
                signature_id=signature_id,
                purpose="letter",
                campaign=SLUG,
                state="queued",
                message_id=f"<letter.{signature_id}@test>",
                recipient="alex.demo.mp@demo-parliament.invalid",
                subject="A letter",
                created_at=datetime.now(UTC),
                due_day=day,
                **waits,
            )
        )


def test_a_letter_waiting_for_its_day_says_so_and_nothing_else(settings, engine) -> None:
    client = _client(settings, engine)
    day = date(2026, 12, 8)
    digested = _row(engine, status=SignatureStatus.RESOLVED, target_name="Alex Demo")
    _queue(engine, digested, day, digest=True)
    capped = _row(engine, status=SignatureStatus.RESOLVED, target_name="Alex Demo")
    _queue(engine, capped, day, digest=False)
    for signature_id, says in (
        (digested, "in the digest for 8 December 2026"),
        (capped, "goes on 8 December 2026"),
    ):
        for wait in ("", "?wait=12"):  # after a minute of looking, too
            page = client.get(f"{_thanks(settings, signature_id)}{wait}").text
            said = _status_text(page)
            assert says in said, said
            assert "taking longer" not in said and "in a moment" not in said, said
            assert "is going to" not in said, said
            assert "data-refresh" not in page  # nothing changes until its day
    french = _status_text(client.get(f"{_thanks(settings, digested)}?lang=fr").text)
    assert "8 décembre 2026" in french


def test_after_a_minute_the_page_says_only_that_it_is_taking_longer(settings, engine) -> None:
    signature_id = _row(engine, status=SignatureStatus.CONFIRMED, constituency_name=None)
    client = _client(settings, engine)
    first = _status_text(client.get(_thanks(settings, signature_id)).text)
    assert first.startswith("We are finding your MP. This page will update in a moment.")
    late = client.get(f"{_thanks(settings, signature_id)}?wait=12").text
    said = _status_text(late)
    assert said == (
        "This is taking longer than usual. We will email you a copy of your letter when it has "
        "gone."
    )
    assert "data-refresh" not in late


def test_an_erased_supporters_thank_you_page_names_nobody(settings, engine) -> None:
    client = _client(settings, engine)
    email = f"erase-{uuid.uuid4().hex[:6]}@example.org"
    signature_id = _row(
        engine,
        status=SignatureStatus.SENT,
        target_name="Alex Demo",
        sent_at=SENT_AT,
        email=email,
        email_normalised=email,
        supporter_key=supporter_key(settings.secret_key, email),
    )
    assert "Alex Demo" in client.get(_thanks(settings, signature_id)).text
    request = Envelope.wrap(
        SupporterErasureRequested(key=supporter_key(settings.secret_key, email))
    )
    Dispatcher("intake", engine, HANDLERS)(request)
    for lang in ("en", "cy", "fr"):
        page = client.get(f"{_thanks(settings, signature_id)}?lang={lang}")
        assert page.status_code == 200
        for named in ("Alex Demo", "Aldershot", "Give every trafficked", SLUG):
            assert named not in page.text, (lang, named)
    text = _text(client.get(f"{_thanks(settings, signature_id)}?lang=en").text)
    assert "This signature has been removed" in text


# --- the supporter's words, and postcodes ----------------------------------------------------


def test_comment_lines_keep_their_first_character(settings, engine) -> None:
    client = _client(settings, engine)
    comment = "@MarkDemo please read this\n+1 from my whole street\n= equal care for all\n-- Jo"
    signature_id = _sign(client, engine, "en", comment=comment)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(signatures.c.comment).where(signatures.c.id == signature_id)
        ).scalar_one()
    assert stored == comment
    link = f"/confirm/{make_token(settings.secret_key, 'confirm', str(signature_id))}"
    letter = html.unescape(client.get(link).text)
    for line in comment.splitlines():
        assert line in letter, line


def test_bf1_postcodes_are_forces_addresses_and_errors_start_with_a_capital(
    settings, engine
) -> None:
    client = _client(settings, engine)
    for postcode, starts in (
        ("BF1 3AA", "British Forces Post Office addresses have no constituency"),
        ("bf13aa", "British Forces Post Office addresses have no constituency"),
        ("IM1 1AA", "The Isle of Man has no MP at Westminster"),
    ):
        response = client.post(
            f"/api/v1/campaigns/{SLUG}/signatures", json=make_signature(postcode=postcode)
        )
        assert response.status_code == 422 or response.status_code == 400, response.text
        errors = {e["field"]: e["message"] for e in response.json()["errors"]}
        assert errors["postcode"].startswith(starts), errors
    page = client.get(f"/c/{SLUG}")
    form = {
        **{k: str(v) for k, v in make_signature(postcode="BF1 3AA").items() if k != "opt_in"},
        "csrf_token": csrf_token_in(page.text),
    }
    refused = client.post(f"/c/{SLUG}/sign", data=form, follow_redirects=False)
    assert refused.status_code == 400
    assert "British Forces Post Office addresses have no constituency" in html.unescape(
        refused.text
    )
