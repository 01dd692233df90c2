"""``GET|POST /unsubscribe/{token}``: the preferences page, its three choices, the RFC 8058
one-click POST, and the updates service applying what intake staged (real Postgres; the
``subscription.changed`` events are taken from the outbox and handled as the consumer would)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.updates.handlers import HANDLERS
from services.updates.models import subscribers
from shared.handling import Dispatcher
from shared.messages import Envelope, SubscriptionChanged
from shared.outbox import outbox
from shared.tokens import make_token
from shared.unsubscribe import make_unsubscribe_token
from tests.integration.updates_helpers import SLUG, Sub, add_subscribers, is_subscribed
from tests.support import csrf_token_in

pytestmark = pytest.mark.integration
OTHER = "specialist-support-for-child-victims"


def client_for(settings, engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def staged(engine: sa.Engine) -> list[Envelope]:
    """subscription.changed events intake has staged and the relay has not taken yet."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.delete(outbox)
            .where(outbox.c.routing_key == SubscriptionChanged.TYPE)
            .returning(outbox.c.body, outbox.c.id)
        ).all()
    return [Envelope.model_validate_json(r.body) for r in sorted(rows, key=lambda r: r.id)]


def apply_staged(engine: sa.Engine) -> list[SubscriptionChanged]:
    """What the updates service does with them (inbox claim, handler, one transaction)."""
    handle = Dispatcher("updates", engine, HANDLERS)
    envelopes = staged(engine)
    for envelope in envelopes:
        handle(envelope)
    return [e.event() for e in envelopes]  # type: ignore[misc]


def link(settings, sub: Sub) -> str:
    return f"/unsubscribe/{make_unsubscribe_token(settings.secret_key, sub.signature_id, sub.campaign)}"


def choose(client: TestClient, url: str, action: str):
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, data={"csrf_token": csrf_token_in(page.text), "action": action})


def test_the_preferences_page_and_its_three_choices(settings, engine) -> None:
    [me] = add_subscribers(engine, 1, emails=["Jo.Bloggs+news@gmail.com"])
    [me_elsewhere] = add_subscribers(engine, 1, campaign=OTHER, emails=["jobloggs@googlemail.com"])
    [someone_else] = add_subscribers(engine, 1, campaign=OTHER, emails=["sam@example.org"])
    client = client_for(settings, engine)
    url = link(settings, me)

    page = client.get(url)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Give every trafficked and unaccompanied child a guardian" in page.text
    for button in (
        "Stop emails about this campaign",
        "Stop emails about every campaign",
        "Keep getting updates about this campaign",
    ):
        assert button in page.text
    assert page.text.count('name="csrf_token"') == 3
    assert staged(engine) == []  # looking changes nothing

    # Leave this campaign.
    done = choose(client, url, "campaign")
    assert done.status_code == 200 and "You have unsubscribed" in done.text
    [event] = apply_staged(engine)
    assert (event.signature_id, event.campaign, event.scope, event.subscribed) == (
        me.signature_id,
        SLUG,
        "campaign",
        False,
    )
    assert not is_subscribed(engine, me) and is_subscribed(engine, me_elsewhere)
    with engine.connect() as conn:
        left_at = conn.execute(
            sa.select(subscribers.c.unsubscribed_at).where(subscribers.c.id == me.id)
        ).scalar_one()
    assert left_at is not None

    # Come back.
    done = choose(client, url, "resubscribe")
    assert "You will keep getting updates" in done.text
    apply_staged(engine)
    assert is_subscribed(engine, me)

    # Leave everything: every row with the same normalised address, whatever the campaign.
    done = choose(client, url, "all")
    assert "You have unsubscribed from every campaign" in done.text
    apply_staged(engine)
    assert not is_subscribed(engine, me) and not is_subscribed(engine, me_elsewhere)
    assert is_subscribed(engine, someone_else)


def test_one_click_needs_no_cookie_and_is_idempotent(settings, engine) -> None:
    [me, other] = add_subscribers(engine, 2)
    url = link(settings, me)
    for _ in range(3):
        client = client_for(settings, engine)  # a fresh client each time: no cookies at all
        response = client.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        assert "You have unsubscribed" in response.text
    events = apply_staged(engine)
    assert [(e.scope, e.subscribed) for e in events] == [("campaign", False)] * 3
    assert not is_subscribed(engine, me) and is_subscribed(engine, other)
    # Multipart, as some providers send it, works too.
    response = client_for(settings, engine).post(
        link(settings, other), files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert response.status_code == 200
    apply_staged(engine)
    assert not is_subscribed(engine, other)


def test_a_form_post_without_its_csrf_token_changes_nothing(settings, engine) -> None:
    [me] = add_subscribers(engine, 1)
    client = client_for(settings, engine)
    url = link(settings, me)
    client.get(url)  # has the cookie, but not the form's token
    response = client.post(url, data={"action": "all"})
    assert response.status_code == 400
    assert "This page has expired" in response.text
    response = client.post(url, data={"action": "nonsense", "csrf_token": "x"})
    assert response.status_code == 400
    assert staged(engine) == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_tampered_or_foreign_token_is_refused(settings, engine, method: str) -> None:
    [me] = add_subscribers(engine, 1)
    client = client_for(settings, engine)
    good = link(settings, me)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    confirm = f"/unsubscribe/{make_token(settings.secret_key, 'confirm', str(me.signature_id))}"
    for url in (tampered, confirm, "/unsubscribe/nonsense"):
        response = client.request(
            method, url, data={"List-Unsubscribe": "One-Click"} if method == "POST" else None
        )
        assert response.status_code == 400, url
        assert "This link does not work" in response.text
    assert staged(engine) == []


def test_a_late_older_change_never_undoes_a_newer_one(settings, engine) -> None:
    [me] = add_subscribers(engine, 1)
    handle = Dispatcher("updates", engine, HANDLERS)
    now = datetime.now(UTC)

    def change(subscribed: bool, at: datetime) -> Envelope:
        event = SubscriptionChanged(
            signature_id=me.signature_id, campaign=SLUG, scope="campaign", subscribed=subscribed
        )
        return Envelope.wrap(event).model_copy(update={"occurred_at": at})

    handle(change(True, now))  # came back ...
    handle(change(False, now - timedelta(seconds=5)))  # ... after leaving; delivered late
    assert is_subscribed(engine, me)
    again = change(False, now + timedelta(seconds=1))
    handle(again)
    handle(again)  # redelivered: claimed once in the inbox
    assert not is_subscribed(engine, me)


def test_the_pages_are_translated(settings, engine) -> None:
    [me] = add_subscribers(engine, 1)
    client = client_for(settings, engine)
    page = client.get(f"{link(settings, me)}?lang=cy")
    assert "Eich dewisiadau e-bost" in page.text
    assert "Stopio negeseuon e-bost am yr ymgyrch hon" in page.text
    done = client.post(
        link(settings, me), data={"csrf_token": csrf_token_in(page.text), "action": "campaign"}
    )
    assert "Rydych chi wedi dad-danysgrifio" in done.text
    french = client_for(settings, engine).post(
        link(settings, me),
        data={"List-Unsubscribe": "One-Click"},
        headers={"Accept-Language": "fr"},
    )
    assert "Vous êtes désinscrit" in french.text
    assert json.loads(staged(engine)[0].model_dump_json())["payload"]["scope"] == "campaign"


def test_unknown_subscribers_are_harmless(settings, engine) -> None:
    """A token for a signature the updates service never had (never opted in, or erased)."""
    ghost = Sub(0, uuid.uuid4(), "ghost@example.org", SLUG)
    client = client_for(settings, engine)
    assert (
        client.post(link(settings, ghost), data={"List-Unsubscribe": "One-Click"}).status_code
        == 200
    )
    [event] = apply_staged(engine)
    assert event.signature_id == ghost.signature_id
