"""Must-show: hostile input fed through the form and the API alike. Each piece is either refused
(a 4xx with a message beside its field, nothing stored) or stored and then rendered inertly:
it never reaches an email header (no new header, no new recipient, no folded line) or a page's
markup (escaped wherever it is shown: the confirm page, the thank-you page, the HTML part of the
letter and of the copy).

The corpus is what phishing text, header injection, markup, template injection, spreadsheet
formulas and hidden characters look like in each field a supporter types into."""

from __future__ import annotations

import email
import re
import uuid
from email import policy
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.models import signatures
from services.intake.signing import supporter_of
from services.mailer import compose
from shared.campaigns import get_campaign
from shared.config import Settings
from shared.messages import Target
from shared.tokens import make_token
from tests.support import csrf_token_in, make_signature
from tests.unit.test_mail_kinds import ALLOWED_HEADERS  # the headers any email of ours has

SLUG = "guardians-for-children"
API = f"/api/v1/campaigns/{SLUG}/signatures"
MP = Target(name="Alex Demo", email="alex.demo.mp@demo-parliament.invalid")
CORPUS = [
    "Jo\r\nBcc: victim@example.org",  # header injection
    "Jo\nSubject: you won",
    "Jo\u2028Bcc: line-separator@example.org",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<b>bold</b> &amp; <i>",
    "{{ 7*7 }} {% for x in range(9) %}x{% endfor %}",
    "${7*7} #{7*7} <%= 7*7 %>",
    '=HYPERLINK("https://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "Visit https://evil.example/login now",
    "Call support at paypal.com.evil.example",
    "jo@evil.example",
    "Jo\u202egnp.exe",  # right-to-left override
    "Jo\u200b\u200bBloggs",  # zero-width spaces
    "Jo\U000e0041\U000e0042",  # tag characters
    "Jo\ue000",  # private use
    "Jo\x00Bloggs",  # NUL
    "Jo\x1b[31mred",  # terminal escape
    "A" * 5000,  # far too long
    "𝕁𝕠 😀 Ω≈ç√",  # unusual but honest text
    "Siân Ó Briain-Jones",  # ordinary, must pass everywhere
]
FIELDS = ("first_name", "last_name", "address_line1", "town", "comment")
# Markup the corpus would add if it were not escaped (escaped, "&lt;img …" is only text).
MARKUP = re.compile(r"<(script|img|b|i)[\s>]|<[a-z][^<>]*\bonerror\s*=", re.I)


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def _stored(engine: sa.Engine, address: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(signatures).where(signatures.c.email == address)).first()


def _by_api(client: TestClient, field: str, value: str) -> tuple[int, str, str]:
    signature = make_signature()
    response = client.post(API, json={**signature, field: value})
    if response.status_code == 202:
        return 202, "", signature["email"]
    body = response.json()
    messages = [e["message"] for e in body.get("errors", []) if e.get("field") == field]
    return response.status_code, " ".join(messages) or str(body.get("detail", "")), ""


def _by_form(client: TestClient, field: str, value: str) -> tuple[int, str, str]:
    signature = make_signature()
    page = client.get(f"/c/{SLUG}")
    form = {k: str(v) for k, v in signature.items() if k not in ("opt_in", "consent")}
    form.update({field: value, "consent": "yes", "csrf_token": csrf_token_in(page.text)})
    response = client.post(f"/c/{SLUG}/sign", data=form, follow_redirects=False)
    if response.status_code == 303:
        return 303, "", signature["email"]
    # The error beside the field: <p id="FIELD-error" class="govuk-error-message">…</p>
    found = re.search(rf'id="{field}-error"[^>]*>(.*?)</p>', response.text, re.S)
    assert not MARKUP.search(_between_tags(response.text, field)), (field, value)
    return response.status_code, re.sub(r"<[^>]+>", "", found.group(1)) if found else "", ""


def _between_tags(page: str, field: str) -> str:
    """What the form echoes back into the field (its value or its textarea text)."""
    found = re.search(rf'(?:id="{field}"[^>]*value="([^"]*)"|id="{field}"[^>]*>([^<]*)<)', page)
    return (found.group(1) or found.group(2) or "") if found else ""


def _assert_inert_in_emails(supporter: Any, campaign: Any, settings: Settings) -> None:
    sid = uuid.uuid4()
    for message in (
        compose.confirmation(sid, campaign, supporter, "https://dearmp.test/confirm/x", settings),
        compose.letter(sid, campaign, supporter, MP, settings),
        compose.copy(sid, campaign, supporter, MP, settings),
    ):
        raw = message.as_bytes()
        parsed = email.message_from_bytes(raw, policy=policy.default)
        names = {k.lower() for k in parsed}
        assert names <= ALLOWED_HEADERS | {"x-dearmp-intended-recipient"}, names
        assert len(parsed.get_all("To") or []) == 1
        assert "victim@example.org" not in str(parsed["To"]) + str(parsed.get("Bcc", ""))
        for name in ("From", "To", "Subject", "Reply-To"):
            value = str(parsed.get(name, ""))
            assert "\n" not in value and "\r" not in value, (name, value)
        html = parsed.get_body(("html",))
        if html is not None:
            assert not MARKUP.search(str(html.get_content())), "markup in the HTML part"


@pytest.mark.parametrize("route", ["api", "form"])
def test_hostile_input_is_refused_or_rendered_inert(route: str, settings, engine) -> None:
    client = client_for(settings, engine)
    send = _by_api if route == "api" else _by_form
    with engine.connect() as conn:
        campaign = get_campaign(conn, SLUG)
    assert campaign is not None
    outcomes: dict[str, int] = {"refused": 0, "stored": 0}
    for field in FIELDS:
        for value in CORPUS:
            status, message, address = send(client, field, value)
            if not address:  # refused: a 4xx that says why, and nothing stored
                assert 400 <= status < 500, (field, value, status)
                assert message.strip(), (field, value, "no message")
                outcomes["refused"] += 1
                continue
            outcomes["stored"] += 1
            row = _stored(engine, address)
            assert row is not None, (field, value)
            supporter = supporter_of(row)
            _assert_inert_in_emails(supporter, campaign, settings)
            token = make_token(settings.secret_key, "confirm", str(row.id))
            thanks = make_token(settings.secret_key, "thanks", str(row.id))
            for path in (f"/confirm/{token}", f"/thanks/{thanks}"):
                page = client.get(path)
                assert page.status_code == 200, (path, page.status_code)
                assert not MARKUP.search(page.text), (field, value, path)
    # The corpus exercises both outcomes, in every field: neither rule is vacuous.
    assert outcomes["refused"] >= 3 * len(FIELDS) and outcomes["stored"] >= len(FIELDS), outcomes
