"""Supporters may edit the letter of an editable campaign: the form, the API and what is stored.

In-process intake against real Postgres with the demo campaigns: "specialist-support-for-child-
victims" has an editable letter, "guardians-for-children" does not.
"""

from __future__ import annotations

import html
import re
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.forms import LETTER_MAX
from services.intake.handlers import HANDLERS
from shared.config import Settings
from shared.handling import Dispatcher
from shared.messages import Envelope, SupporterErasureRequested
from shared.supporters import supporter_key
from tests.support import csrf_token_in, make_signature

EDITABLE = "specialist-support-for-child-victims"
FIXED = "guardians-for-children"
DEFAULT_START = "I am writing to ask you to guarantee specialist support"
DEFAULT_END = "child happens to live."


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def textarea(page: str, name: str) -> str | None:
    match = re.search(rf'<textarea[^>]* name="{name}"[^>]*>\n?(.*?)</textarea>', page, re.S)
    return None if match is None else html.unescape(match.group(1))


def error_summary(page: str) -> list[tuple[str, str]]:
    match = re.search(r'<ul class="govuk-list govuk-error-summary__list">(.*?)</ul>', page, re.S)
    assert match, "no error summary"
    return [
        (anchor, html.unescape(text))
        for anchor, text in re.findall(r'<a href="#(\w+)">(.*?)</a>', match.group(1))
    ]


def stored(engine: sa.Engine) -> list[sa.Row]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT campaign, letter, comment FROM signatures")))


def outbox_letters(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.text("SELECT body FROM outbox WHERE routing_key = 'signature.received'")
        ).scalars()
        return [Envelope.from_json(bytes(b)).payload["supporter"]["letter"] for b in bodies]


def form_post(client: TestClient, slug: str, page: str, **fields: str) -> tuple[int, str]:
    data = {**make_signature(postcode="SW1A 1AA"), "consent": "yes", **fields}
    data = {k: str(v) for k, v in data.items() if k != "opt_in"}
    response = client.post(
        f"/c/{slug}/sign", data={**data, "csrf_token": csrf_token_in(page)}, follow_redirects=False
    )
    return response.status_code, response.text


def test_the_form_shows_the_letter_to_edit_only_when_the_campaign_allows_it(
    settings, engine
) -> None:
    client = client_for(settings, engine)
    page = client.get(f"/c/{EDITABLE}").text
    words = textarea(page, "letter")
    assert words is not None, "no letter to edit"
    assert words.startswith(DEFAULT_START) and words.endswith(DEFAULT_END)
    # The greeting, comment and sign-off are not in the part to edit; no placeholder is.
    assert "Dear" not in words and "Yours sincerely" not in words and "[your" not in words
    assert '<label class="govuk-label" for="letter">Your letter</label>' in page
    assert "We add the greeting, your name and your address for you." in page
    assert 'aria-describedby="letter-hint"' in page and 'lang="en"' in page
    # The whole letter, as before, under "Read the letter".
    assert "Dear Home Secretary," in page and "[your name]" in page

    other = client.get(f"/c/{FIXED}").text
    assert textarea(other, "letter") is None and 'for="letter"' not in other
    assert textarea(other, "comment") is not None


def test_the_letter_page_is_translated(settings, engine) -> None:
    client = client_for(settings, engine)
    welsh = client.get(f"/c/{EDITABLE}?lang=cy").text
    assert "Eich llythyr" in welsh and "Rydym yn ychwanegu’r cyfarchiad" in welsh
    assert textarea(welsh, "letter").startswith(DEFAULT_START)  # type: ignore[union-attr]
    french = client.get(f"/c/{EDITABLE}?lang=fr").text
    assert "Votre lettre" in french and "la formule d’appel" in french


def test_a_letter_too_long_is_explained_and_kept(settings, engine) -> None:
    client = client_for(settings, engine)
    page = client.get(f"/c/{EDITABLE}").text
    long_letter = "Dear reader, <b>mine</b> & yours.\n\n" + "x" * LETTER_MAX
    status, answer = form_post(client, EDITABLE, page, letter=long_letter, first_name="")
    assert status == 400
    message = "Your letter must be 5000 characters or fewer"
    assert error_summary(answer) == [("first_name", "Enter your first name"), ("letter", message)]
    assert (
        '<p id="letter-error" class="govuk-error-message"><span class="govuk-visually-hidden">'
        f"Error:</span> {message}</p>"
    ) in answer
    assert (
        "govuk-textarea--error" in answer
        and 'aria-describedby="letter-hint letter-error"' in answer
    )
    assert textarea(answer, "letter") == long_letter  # as typed, escaped in the page
    assert "<b>mine</b>" not in answer
    assert stored(engine) == []

    # Cleared: the letter is needed (the form always sends it).
    status, answer = form_post(client, EDITABLE, page, letter="  \r\n  ")
    assert status == 400 and error_summary(answer) == [("letter", "Enter your letter")]
    assert textarea(answer, "letter") == "  \r\n  "  # kept as it came
    welsh = client.post(
        f"/c/{EDITABLE}/sign?lang=cy",
        data={
            **{k: str(v) for k, v in make_signature().items() if k != "opt_in"},
            "consent": "yes",
            "letter": "x" * (LETTER_MAX + 1),
            "csrf_token": csrf_token_in(page),
        },
    )
    assert error_summary(welsh.text) == [("letter", "Rhaid i’ch llythyr fod yn 5000 nod neu lai")]


def test_the_form_stores_own_words_and_the_default_as_empty(settings, engine) -> None:
    client = client_for(settings, engine)
    page = client.get(f"/c/{EDITABLE}").text
    default = textarea(page, "letter")
    assert default is not None
    # Sent back as shown (browsers send CRLF): the campaign's own words, stored as "".
    status, _ = form_post(client, EDITABLE, page, letter=default.replace("\n", "\r\n") + "\r\n")
    assert status == 303
    own = "Dear Home Secretary, my own words.\r\n\r\nWith a {{ 7*7 }} and a \x00NUL.\r\n"
    status, _ = form_post(client, EDITABLE, page, letter=own)
    assert status == 303
    # Not editable: the field is not on the form, and anything posted under its name is ignored.
    other = client.get(f"/c/{FIXED}").text
    status, _ = form_post(client, FIXED, other, letter="Replace the letter", postcode="GU11 1AA")
    assert status == 303
    mine = "Dear Home Secretary, my own words.\n\nWith a {{ 7*7 }} and a NUL."
    assert sorted((r.campaign, r.letter) for r in stored(engine)) == [
        (FIXED, ""),
        (EDITABLE, ""),
        (EDITABLE, mine),
    ]
    # The wording travels in the event, as the comment does.
    assert sorted(outbox_letters(engine)) == ["", "", mine]


def test_the_api_takes_own_words_for_an_editable_letter_only(settings, engine) -> None:
    client = client_for(settings, engine)
    url = "/api/v1/campaigns/{}/signatures"
    described = client.get(f"/api/v1/campaigns/{EDITABLE}").json()
    assert described["letter_editable"] is True
    assert described["default_letter"].startswith(DEFAULT_START)
    plain = client.get(f"/api/v1/campaigns/{FIXED}").json()
    assert plain["letter_editable"] is False and plain["default_letter"] is None

    accepted = client.post(url.format(EDITABLE), json=make_signature(letter="Mine\r\nonly"))
    assert accepted.status_code == 202, accepted.text
    left_out = client.post(url.format(EDITABLE), json=make_signature())
    assert left_out.status_code == 202  # the API may leave it out: the campaign's words
    too_long = client.post(url.format(EDITABLE), json=make_signature(letter="x" * 5001))
    assert too_long.status_code == 422
    assert too_long.json()["errors"] == [
        {"field": "letter", "message": "Your letter must be 5000 characters or fewer"}
    ]
    refused = client.post(url.format(FIXED), json=make_signature(letter="Replace the letter"))
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "letter", "message": "This campaign's letter cannot be edited"}
    ]
    assert client.post(url.format(FIXED), json=make_signature(letter="")).status_code == 202
    assert sorted(r.letter for r in stored(engine)) == ["", "", "Mine\nonly"]

    schema = client.get("/openapi.json").json()["components"]["schemas"]
    letter = schema["SignatureIn"]["properties"]["letter"]
    assert "cannot be edited" in letter["description"] and letter["default"] == ""
    assert "letter_editable" in schema["CampaignOut"]["properties"]


def test_erasure_clears_own_words(settings, engine) -> None:
    client = client_for(settings, engine)
    signature = make_signature(email="jo.erase@example.org", letter="My own words")
    assert (
        client.post(f"/api/v1/campaigns/{EDITABLE}/signatures", json=signature).status_code == 202
    )
    assert [r.letter for r in stored(engine)] == ["My own words"]
    request = Envelope.wrap(
        SupporterErasureRequested(key=supporter_key(settings.secret_key, "jo.erase@example.org")),
        correlation_id=uuid.uuid4(),
    )
    Dispatcher("intake", engine, HANDLERS)(request)
    assert [r.letter for r in stored(engine)] == [""]
