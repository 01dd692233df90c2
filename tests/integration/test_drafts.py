"""Drafts stay private (issue 25): a campaign saved but never opened answers as a missing one
does on every public page and in the API; once it has been open it stays visible when paused; a
scheduled one is public from its opens_at. In-process against real Postgres, campaigns saved
with the real ``save_campaign`` (as the staff editor does)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from shared.campaigns import Campaign, read_campaign_file, save_campaign
from shared.config import Settings
from tests.support import ROOT, csrf_token_in, make_signature, wait_until

TEMPLATE = ROOT / "campaigns" / "guardians-for-children.yaml"
DRAFT = "a-draft-campaign"
MISSING = "no-such-campaign-at-all"
EXISTING = "guardians-for-children"


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def save(engine: sa.Engine, **changes: Any) -> Campaign:
    campaign = read_campaign_file(TEMPLATE).model_copy(update={"slug": DRAFT, **changes})
    with engine.begin() as conn:
        save_campaign(conn, campaign, saved_by="editor@example.org")
    return campaign


def answers(client: TestClient, slug: str) -> dict[str, tuple[int, str]]:
    """What every public address of a campaign answers (status, body without the slug and
    per-visit tokens)."""
    token = csrf_token_in(client.get(f"/c/{EXISTING}").text)
    signature = make_signature()
    form = {**{k: str(v) for k, v in signature.items()}, "csrf_token": token}
    help_form = {"name": "Jo", "email": "jo@example.org", "message": "hi", "csrf_token": token}
    api = f"/api/v1/campaigns/{slug}"
    got = {
        "page": client.get(f"/c/{slug}"),
        "json": client.get(f"/c/{slug}.json"),
        "check-email": client.get(f"/c/{slug}/check-email"),
        "help": client.get(f"/c/{slug}/help"),
        "sign": client.post(f"/c/{slug}/sign", data=form, follow_redirects=False),
        "help-post": client.post(f"/c/{slug}/help", data=help_form, follow_redirects=False),
        "api": client.get(api),
        "api-counts": client.get(f"{api}/counts"),
        "api-sign": client.post(f"{api}/signatures", json=signature),
        "api-help": client.post(
            f"{api}/help-requests", json={k: v for k, v in help_form.items() if k != "csrf_token"}
        ),
    }
    return {
        name: (r.status_code, re.sub(r"csrf_token\" value=\"[^\"]+", "", r.text.replace(slug, "S")))
        for name, r in got.items()
    }


def test_a_campaign_never_opened_answers_as_a_missing_one(settings, engine) -> None:
    client = client_for(settings, engine)
    save(engine, open=False)  # saved paused in the editor, never opened
    draft, missing = answers(client, DRAFT), answers(client, MISSING)
    for name, (status, body) in draft.items():
        assert status == 404, (name, status)
        assert (status, body) == missing[name], name
    # Nothing was stored for it.
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM signatures WHERE campaign = :s"), {"s": DRAFT}
            ).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM help_requests WHERE campaign = :s"), {"s": DRAFT}
            ).scalar_one()
            == 0
        )
    # Its own edits while it is a draft change nothing.
    save(engine, open=False, title="A draft, edited")
    assert client.get(f"/c/{DRAFT}").status_code == 404


def test_once_open_a_paused_or_closed_campaign_stays_visible(settings, engine) -> None:
    client = client_for(settings, engine)
    save(engine, open=False)
    assert client.get(f"/c/{DRAFT}").status_code == 404
    save(engine, open=True)
    assert client.get(f"/c/{DRAFT}").status_code == 200
    save(engine, open=False, title="Paused now")  # paused after it was open
    page = client.get(f"/c/{DRAFT}")
    assert page.status_code == 200 and "Paused now" in page.text
    assert client.get(f"/api/v1/campaigns/{DRAFT}").json()["open"] is False
    assert client.get(f"/c/{DRAFT}.json").status_code == 200
    # Signing a paused campaign is refused as before (409), not as a missing one.
    wait_until(
        lambda: (
            client.post(f"/api/v1/campaigns/{DRAFT}/signatures", json=make_signature()).status_code
            == 409
        ),
        10,
        0.2,
        "signing to see the pause (a campaign is re-read within a second)",
    )
    closed = datetime.now(UTC) - timedelta(minutes=1)
    save(engine, open=True, opens_at=closed - timedelta(days=1), closes_at=closed)
    assert client.get(f"/c/{DRAFT}").status_code == 200


def test_a_scheduled_campaign_is_public_from_its_opens_at(settings, engine) -> None:
    client = client_for(settings, engine)
    later = datetime.now(UTC) + timedelta(days=3)
    save(engine, open=True, opens_at=later)
    assert client.get(f"/c/{DRAFT}").status_code == 404
    assert client.get(f"/api/v1/campaigns/{DRAFT}").status_code == 404
    # Rescheduled before it opened, then paused: it never took signatures, still a draft.
    save(engine, open=True, opens_at=later + timedelta(days=1))
    save(engine, open=False, opens_at=later + timedelta(days=1))
    assert client.get(f"/c/{DRAFT}").status_code == 404
    # Its opens_at comes: public from then, by itself.
    soon = datetime.now(UTC) + timedelta(seconds=2)
    save(engine, open=True, opens_at=soon)
    assert client.get(f"/c/{DRAFT}").status_code == 404
    wait_until(
        lambda: client.get(f"/c/{DRAFT}").status_code == 200, 15, 0.2, "the campaign to open"
    )
    # Paused after its opens_at passed: it was open, so it stays visible.
    save(engine, open=False, opens_at=soon)
    assert client.get(f"/c/{DRAFT}").status_code == 200


def test_a_campaign_with_signatures_was_open_whatever_its_history(settings, engine) -> None:
    """Paused before versions were kept (migration 0015 recorded only the paused definition):
    its signatures show it was open."""
    client = client_for(settings, engine)
    assert (
        client.post(f"/api/v1/campaigns/{EXISTING}/signatures", json=make_signature()).status_code
        == 202
    )
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM campaign_versions WHERE campaign = :s"), {"s": EXISTING})
        conn.execute(
            sa.text(
                "UPDATE campaigns SET definition = jsonb_set(definition, '{open}', 'false'), "
                "updated_at = now(), version = version + 1 WHERE slug = :s"
            ),
            {"s": EXISTING},
        )
        conn.execute(
            sa.text(
                "INSERT INTO campaign_versions (campaign, version, definition, saved_at, saved_by) "
                "SELECT slug, version, definition, updated_at, 'migration 0015' FROM campaigns "
                "WHERE slug = :s"
            ),
            {"s": EXISTING},
        )
    assert client.get(f"/c/{EXISTING}").status_code == 200
