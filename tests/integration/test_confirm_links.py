"""The confirm link and the thank-you page (issue 25): a used confirm link shows nothing of the
supporter, and the thank-you page has a token of its own that shows the letter's progress and
nothing personal. In-process against real Postgres."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from shared.config import Settings
from shared.tokens import make_token, read_token
from tests.support import csrf_token_in, make_signature

SLUG = "guardians-for-children"
# Distinctive values, so finding any of them on a page means the page shows it.
PERSONAL = {
    "first_name": "Zebediah",
    "last_name": "Quarrington",
    "address_line1": "17 Wisteria Crescent",
    "town": "Aldershot",
    "comment": "Please act on this now",
}


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def _sign(client: TestClient, engine: sa.Engine) -> tuple[uuid.UUID, str]:
    email = f"z-{uuid.uuid4().hex[:8]}@example.org"
    signature = {**make_signature(email=email), **PERSONAL}
    assert client.post(f"/api/v1/campaigns/{SLUG}/signatures", json=signature).status_code == 202
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT id FROM signatures WHERE email = :e"), {"e": email}
        ).scalar_one()
    return found, email


def _personal_on(page: str, email: str, *, but: tuple[str, ...] = ()) -> list[str]:
    """The supporter's details found on ``page`` (``but``: values that may be there as
    something else, such as a town that is also the constituency's name)."""
    return [v for v in (*PERSONAL.values(), email, "GU11 1AA") if v in page and v not in but]


def _confirm(client: TestClient, token: str) -> str:
    """Press the button; returns where it leads."""
    form = client.get(f"/confirm/{token}")
    assert form.status_code == 200
    done = client.post(
        f"/confirm/{token}",
        data={"csrf_token": csrf_token_in(form.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    return done.headers["location"]


def test_a_used_confirm_link_shows_no_personal_details(settings, engine) -> None:
    client = client_for(settings, engine)
    signature_id, email = _sign(client, engine)
    token = make_token(settings.secret_key, "confirm", str(signature_id))
    before = client.get(f"/confirm/{token}")
    # Unused, it shows what will be sent and who from: the supporter needs to check it.
    assert "Zebediah" in before.text and email in before.text
    thanks = _confirm(client, token)
    used = client.get(f"/confirm/{token}")
    assert used.status_code == 200
    assert not _personal_on(used.text, email), _personal_on(used.text, email)
    assert "You have already confirmed your signature" in used.text
    assert "Confirm my signature" not in used.text  # no button, no letter
    # It leads to the thank-you page, by that page's own address.
    link = re.search(r'href="(/thanks/[^"]+)"', used.text)
    assert link is not None and link.group(1) == thanks
    assert client.get(link.group(1)).status_code == 200
    # The same in every language.
    for lang in ("cy", "fr"):
        page = client.get(f"/confirm/{token}?lang={lang}")
        assert page.status_code == 200 and not _personal_on(page.text, email), lang
        assert 'href="/thanks/' in page.text


def test_the_thank_you_page_has_a_token_of_its_own(settings, engine) -> None:
    client = client_for(settings, engine)
    signature_id, _ = _sign(client, engine)
    confirm_token = make_token(settings.secret_key, "confirm", str(signature_id))
    location = _confirm(client, confirm_token)
    assert location.startswith("/thanks/")
    thanks_token = location.removeprefix("/thanks/")
    assert thanks_token != confirm_token and confirm_token not in location
    assert client.get(location).status_code == 200
    # The confirm link does not open the thank-you page, nor the thank-you link the confirm page.
    refused = client.get(f"/thanks/{confirm_token}")
    assert refused.status_code == 400 and "This link does not work" in refused.text
    assert client.get(f"/confirm/{thanks_token}").status_code == 400
    # Confirming again (a second press) leads to the thank-you page's own address too.
    again = client.get(f"/confirm/{confirm_token}")
    # A token carries the second it was made in: compare what it opens, not its letters.
    shown = re.search(r'href="/thanks/([^"]+)"', again.text)
    assert shown is not None
    assert read_token(settings.secret_key, "thanks", shown.group(1)) == str(signature_id)


def test_the_thank_you_page_never_shows_personal_details(settings, engine) -> None:
    """Whatever state the letter is in: the MP and constituency it goes to, never the
    supporter's name, email, address, postcode or comment."""
    client = client_for(settings, engine)
    signature_id, email = _sign(client, engine)
    location = _confirm(client, make_token(settings.secret_key, "confirm", str(signature_id)))
    for status, extra in [
        ("confirmed", {}),
        ("resolved", {"target_name": "Alex Demo", "constituency_name": "Aldershot"}),
        ("sent", {"target_name": "Alex Demo", "constituency_name": "Aldershot"}),
        ("unresolvable", {"unresolvable_reason": "invalid_postcode"}),
        ("held", {"constituency_name": "Aldershot"}),
        ("failed", {"target_name": "Alex Demo"}),
    ]:
        sets = ", ".join(f"{k} = :{k}" for k in ("status", *extra))
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE signatures SET {sets} WHERE id = :id"),
                {"status": status, "id": signature_id, **extra},
            )
        page = client.get(location)
        assert page.status_code == 200, status
        shown = _personal_on(page.text, email, but=("Aldershot",))  # the constituency's name
        assert not shown, (status, shown)
