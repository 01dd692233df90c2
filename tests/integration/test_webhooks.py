"""Webhooks (issue 18): a receiver gets each event once with a valid signature, and again after
it was down (each event id accepted once); the failure log shows the failed attempts; erasure
removes the person's deliveries; one organisation's staff never see another's webhooks; the
commands' errors are one line.

In-process against real Postgres: events go straight to the updates service's dispatcher (the
relay and the broker have their own tests), the sender runs in the test's thread, and the
receiver is a small HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from services.intake.admin.access import held_about
from services.intake.models import signatures
from services.intake.signing import CONFIRM
from services.updates.handlers import bootstrap
from services.updates.models import webhook_deliveries, webhook_failures
from services.updates.reports import webhook_states
from services.updates.webhook_sender import WebhookSender, expire
from shared import outbox, webhook_signing
from shared.config import Settings
from shared.messages import Envelope, SupporterErasureRequested
from shared.organisations import checked, organisation_of, save_organisation
from shared.reference import campaigns
from shared.supporters import supporter_key
from shared.webhooks import add_endpoint
from tests.integration.admin_helpers import make_signature_row, make_staff
from tests.integration.test_organisations import A, client_as, csrf_for, two_organisations
from tests.integration.webhook_helpers import Receiver, confirmed, letter_sent
from tests.support import wait_until

SECRET_KEY = "test-secret-key-0123456789"


@pytest.fixture
def quick(database_url: str) -> Settings:
    """Retries in fractions of a second instead of minutes."""
    return Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        webhooks_allow_http_localhost=True,
        webhook_timeout_seconds=2,
        webhook_retry_seconds=0.1,
        webhook_retry_max_seconds=0.3,
        webhook_max_attempts=50,
    )


@pytest.fixture
def receiver() -> Any:
    found = Receiver().start()
    yield found
    found.stop()


def register(engine: sa.Engine, receiver: Receiver, campaign: str = A) -> int:
    with engine.begin() as conn:
        endpoint, receiver.secret = add_endpoint(
            conn, organisation_of(conn, campaign) or "", receiver.url, allow_http_localhost=True
        )
    return endpoint.id


def rows(engine: sa.Engine, table: sa.Table) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)))


def send_until(sender: WebhookSender, done: Any, timeout: float = 10) -> None:
    wait_until(lambda: sender() >= 0 and done(), timeout, 0.05, "the deliveries")


def test_each_event_once_signed_then_again_after_the_receiver_was_down(
    engine, quick, receiver
) -> None:
    register(engine, receiver)
    handle = bootstrap(quick, engine)
    sender = WebhookSender(engine, quick)

    one = confirmed(A)
    handle(one)
    handle(one)  # redelivered: still one delivery
    handle(confirmed(A, org_opt_in=False, opt_in=True))  # the campaign's updates only: none
    sent = letter_sent(one)
    handle(sent)
    handle(sent)
    handle(letter_sent(confirmed(A, org_opt_in=False)))  # never told to the organisation
    assert sender() == 2
    assert set(receiver.accepted) == {str(one.id), str(sent.id)}
    got = receiver.accepted[str(one.id)]
    data = got["body"]["data"]
    assert got["body"]["type"] == "signature.confirmed" and got["body"]["campaign"] == A
    assert data["email"] == one.payload["supporter"]["email"] and data["opted_in_at"]
    letter = receiver.accepted[str(sent.id)]
    assert letter["body"]["data"]["signature_id"] == str(one.payload["signature_id"])
    assert "email" not in json.dumps(letter["body"])  # ids and times only
    # The receiver checked each signature (a bad one is answered 400); a wrong secret fails.
    assert receiver.bad_signatures == 0
    assert not webhook_signing.verify("whsec_wrong", got["timestamp"], got["signature"], got["raw"])

    # Down: answering 503, then its port closed. Two signatures confirm meanwhile.
    receiver.status = 503
    later = [confirmed(A), confirmed(A)]
    for envelope in later:
        handle(envelope)
    send_until(sender, lambda: len(rows(engine, webhook_failures)) >= 3)
    receiver.stop()
    send_until(
        sender,
        lambda: any(f.error == "could not connect" for f in rows(engine, webhook_failures)),
    )
    assert {str(e.id) for e in later}.isdisjoint(receiver.accepted)
    # Back: every event arrives, each accepted once, none of the earlier ones again.
    receiver.status = 200
    receiver.start()
    send_until(
        sender, lambda: all(d.state == "delivered" for d in rows(engine, webhook_deliveries))
    )
    assert {str(e.id) for e in later} <= set(receiver.accepted) and len(receiver.accepted) == 4
    assert not receiver.repeats and receiver.bad_signatures == 0
    assert all(receiver.tried[str(e.id)] >= 2 for e in later[:1])  # tried while it was down
    failures = rows(engine, webhook_failures)
    assert {f.error for f in failures} >= {"HTTP 503", "could not connect"}
    assert {f.status_code for f in failures} >= {503, None}
    assert not any(f.gave_up for f in failures)
    by_event = {str(d.event_id): d for d in rows(engine, webhook_deliveries)}
    assert by_event[str(later[0].id)].attempts >= 2 and by_event[str(one.id)].attempts == 1


def test_gives_up_after_the_last_attempt_and_says_so(engine, quick, receiver) -> None:
    register(engine, receiver)
    receiver.status = 500
    settings = quick.model_copy(update={"webhook_max_attempts": 3})
    bootstrap(settings, engine)(confirmed(A))
    sender = WebhookSender(engine, settings)
    send_until(sender, lambda: rows(engine, webhook_deliveries)[0].state == "failed")
    delivery = rows(engine, webhook_deliveries)[0]
    assert delivery.attempts == 3 and delivery.finished_at is not None
    failures = rows(engine, webhook_failures)
    assert [(f.attempt, f.error, f.gave_up) for f in failures] == [
        (1, "HTTP 500", False),
        (2, "HTTP 500", False),
        (3, "HTTP 500", True),
    ]
    assert sender() == 0 and receiver.tried[str(delivery.event_id)] == 3  # no more tries
    with engine.connect() as conn:
        assert webhook_states(conn) == {"failed": 1}  # what dearmp status shows
    # Retention: the body goes first, then the row with its failure log.
    with engine.begin() as conn:
        conn.execute(
            webhook_deliveries.update().values(finished_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert expire(engine, settings) == (1, 1)
    assert rows(engine, webhook_deliveries) == [] and rows(engine, webhook_failures) == []


def test_erasure_removes_the_persons_deliveries_before_they_go(engine, quick, receiver) -> None:
    register(engine, receiver)
    handle = bootstrap(quick, engine)
    email = f"erase-me-{uuid.uuid4().hex[:6]}@example.org"
    theirs, other = confirmed(A, email=email), confirmed(A)
    handle(theirs)
    handle(other)
    held = held_about(engine, email, SECRET_KEY)["webhook_deliveries"]  # subject access
    assert [h["event_id"] for h in held] == [str(theirs.id)] and email in held[0]["body"]
    assert held_about(engine, email, SECRET_KEY, organisation="beta")["webhook_deliveries"] == []
    erasure = Envelope.wrap(SupporterErasureRequested(key=supporter_key(SECRET_KEY, email)))
    handle(erasure)
    assert [str(d.event_id) for d in rows(engine, webhook_deliveries)] == [str(other.id)]
    handle(letter_sent(theirs))  # after the erasure: nothing to say about them
    handle(theirs)  # a late redelivery of their confirmation: refused (erased)
    assert len(rows(engine, webhook_deliveries)) == 1
    assert held_about(engine, email, SECRET_KEY)["webhook_deliveries"] == []
    assert WebhookSender(engine, quick)() == 1 and list(receiver.accepted) == [str(other.id)]
    with engine.connect() as conn:
        answer = conn.execute(
            sa.text("SELECT body FROM outbox WHERE routing_key = 'supporter.erased'")
        ).scalar_one()
    assert b'"webhook_deliveries":1' in answer


def test_confirming_carries_the_own_list_opt_in_to_the_webhooks(engine, quick) -> None:
    """Intake's confirm statement puts ``org_opt_in_at`` in signature.confirmed; the updates
    service records a delivery from it."""
    with engine.begin() as conn:
        save_organisation(conn, checked(slug="ecpat", name="ECPAT UK", privacy_url="/p"))
        conn.execute(campaigns.update().where(campaigns.c.slug == A).values(organisation="ecpat"))
        add_endpoint(conn, "ecpat", "https://crm.example.org/hook")
        now = datetime.now(UTC)
        ticked = make_signature_row(campaign=A, created_at=now) | {"org_opt_in_at": now}
        unticked = make_signature_row(campaign=A, created_at=now)
        for row in (ticked, unticked):
            conn.execute(signatures.insert().values(**row))
    handle = bootstrap(quick, engine)
    for row in (ticked, unticked):
        with engine.begin() as conn:
            conn.exec_driver_sql(
                CONFIRM,
                {
                    "id": row["id"],
                    "now": now,
                    "event_id": uuid.uuid4(),
                    "occurred_at": now.isoformat(),
                },
            )
            body = conn.execute(
                sa.text("SELECT body FROM outbox WHERE correlation_id = :s"), {"s": str(row["id"])}
            ).scalar_one()
        envelope = Envelope.from_json(body)
        assert ("org_opt_in_at" in envelope.payload) == ("org_opt_in_at" in row)  # only if ticked
        assert envelope.event().org_opt_in_at == row.get("org_opt_in_at")  # type: ignore[attr-defined]
        handle(envelope)
    made = rows(engine, webhook_deliveries)
    assert [(d.signature_id, d.event_type) for d in made] == [(ticked["id"], "signature.confirmed")]


def test_one_organisations_staff_never_see_anothers_webhooks(settings, engine) -> None:
    two_organisations(engine)
    alpha = Receiver()
    register(engine, alpha, A)
    quick = settings.model_copy(update={"webhooks_allow_http_localhost": True})
    bootstrap(quick, engine)(confirmed(A))
    WebhookSender(engine, quick)()  # nobody listens on alpha's port: a failure in its log
    event_id = str(rows(engine, webhook_deliveries)[0].event_id)

    owner = client_as(quick, engine, "alpha-owner@example.org")
    page = owner.get("/admin/webhooks")
    assert page.status_code == 200
    assert alpha.url in page.text and event_id in page.text and "could not connect" in page.text
    assert alpha.secret not in page.text  # shown once, when added; never again
    token = csrf_for(owner, "/admin/webhooks")
    added = owner.post(
        "/admin/webhooks", data={"csrf_token": token, "url": "https://crm.example.org/h"}
    )
    assert added.status_code == 200 and "whsec_" in added.text and "not shown again" in added.text
    assert "whsec_" not in owner.get("/admin/webhooks").text
    bad = owner.post(
        "/admin/webhooks", data={"csrf_token": token, "url": "http://crm.example.org/h"}
    )
    assert bad.status_code == 400 and "must start with https://" in bad.text

    beta = client_as(quick, engine, "beta-owner@example.org")
    theirs = beta.get("/admin/webhooks")
    assert theirs.status_code == 200
    for secret in (alpha.url, event_id, "could not connect", "crm.example.org"):
        assert secret not in theirs.text
    token = csrf_for(beta, "/admin/webhooks")
    endpoint_id = rows(engine, webhook_deliveries)[0].endpoint_id
    refused = beta.post(f"/admin/webhooks/{endpoint_id}/remove", data={"csrf_token": token})
    missing = beta.post("/admin/webhooks/987654/remove", data={"csrf_token": token})
    assert refused.status_code == missing.status_code == 404
    assert len(rows(engine, webhook_deliveries)) == 1

    for email in ("alpha-viewer@example.org", "alpha-editor@example.org"):
        assert client_as(quick, engine, email).get("/admin/webhooks").status_code == 403
    removed = owner.post(
        f"/admin/webhooks/{endpoint_id}/remove",
        data={"csrf_token": csrf_for(owner, "/admin/webhooks")},
        follow_redirects=False,
    )
    assert removed.status_code == 303 and rows(engine, webhook_deliveries) == []

    # A platform operator sees every organisation's and chooses which one an endpoint is for.
    operator = client_as(quick, engine, make_staff(engine))
    token = csrf_for(operator, "/admin/webhooks")
    form = {"csrf_token": token, "url": "https://beta-crm.example.org/h"}
    assert "Choose the organisation" in operator.post("/admin/webhooks", data=form).text
    added = operator.post("/admin/webhooks", data={**form, "organisation": "beta"})
    assert added.status_code == 200 and "whsec_" in added.text
    listing = operator.get("/admin/webhooks").text
    assert "beta-crm.example.org" in listing and "crm.example.org/h" in listing  # alpha's too
    assert "beta-crm.example.org" in beta.get("/admin/webhooks").text


def test_webhooks_commands(engine, database_url) -> None:
    from typer.testing import CliRunner

    from services.ops.cli import app

    runner = CliRunner()

    def run(*args: str, allow: bool = False) -> Any:
        env = {"DEARMP_DATABASE_URL": database_url}
        if allow:
            env["DEARMP_WEBHOOKS_ALLOW_HTTP_LOCALHOST"] = "true"
        return runner.invoke(app, list(args), env=env)

    added = run("webhooks", "add", "dear-mp", "https://crm.example.org/hook")
    assert added.exit_code == 0, added.output
    lines = added.output.strip().splitlines()
    assert lines[0].startswith("added endpoint ") and "whsec_" in lines[1]
    secret = lines[1].split()[-1]
    listed = run("webhooks", "list")
    assert "dear-mp  https://crm.example.org/hook" in listed.output and secret not in listed.output
    assert run("webhooks", "add", "dear-mp", "http://127.0.0.1:9/h", allow=True).exit_code == 0
    mistakes = {
        ("webhooks", "add", "dear-mp", "http://crm.example.org/hook"): "https://",
        ("webhooks", "add", "dear-mp", "http://127.0.0.1:9/h"): "https://",  # not allowed here
        ("webhooks", "add", "nowhere", "https://crm.example.org/x"): "no organisation 'nowhere'",
        ("webhooks", "add", "dear-mp", "https://crm.example.org/hook"): "already registered",
        ("webhooks", "remove", "987654"): "no endpoint 987654",
        ("webhooks", "remove", "abc"): "endpoint id",
    }
    for args, expected in mistakes.items():
        result = run(*args)
        assert result.exit_code != 0, args
        assert expected in result.output and len(result.output.strip().splitlines()) == 1, (
            args,
            result.output,
        )
    endpoint_id = lines[0].split()[2]
    assert (
        run("webhooks", "remove", endpoint_id).output.strip() == f"removed endpoint {endpoint_id}"
    )
    assert "crm.example.org" not in run("webhooks", "list", "--org", "dear-mp").output


@pytest.fixture
def quick_webhooks(service_env: dict[str, str]) -> None:
    service_env.update(
        DEARMP_WEBHOOKS_ALLOW_HTTP_LOCALHOST="true",
        DEARMP_WEBHOOK_SWEEP_SECONDS="0.1",
        DEARMP_WEBHOOK_RETRY_SECONDS="0.2",
        DEARMP_WEBHOOK_RETRY_MAX_SECONDS="0.5",
    )


def test_through_the_outbox_the_broker_and_the_updates_worker(
    quick_webhooks, system, engine, receiver
) -> None:
    """The whole way: events staged in the outbox, published by the relay, consumed and sent by
    ``dearmp serve updates`` (its binding for letter.sent, its webhook thread)."""
    register(engine, receiver)
    system.services["relay"].start().wait_started()
    system.services["updates"].start().wait_started()
    one = confirmed(A)
    with engine.begin() as conn:
        first = outbox.add(conn, one.event(), correlation_id=one.correlation_id)
        sent = outbox.add(conn, letter_sent(one).event(), correlation_id=one.correlation_id)
    wait_until(lambda: {str(first), str(sent)} <= set(receiver.accepted), 20, 0.1, "both events")
    receiver.stop()  # down: its port closed
    later = confirmed(A)
    with engine.begin() as conn:
        missed = outbox.add(conn, later.event(), correlation_id=later.correlation_id)
    wait_until(lambda: rows(engine, webhook_failures), 20, 0.1, "a failed attempt")
    receiver.start()
    wait_until(lambda: str(missed) in receiver.accepted, 20, 0.1, "the missed event")
    assert len(receiver.accepted) == 3 and not receiver.repeats and not receiver.bad_signatures
    assert rows(engine, webhook_failures)[0].error == "could not connect"


def test_migration_0017_down_and_up(engine, database_url) -> None:
    from alembic import command

    from shared.db import alembic_config, upgrade

    tables = ("webhook_endpoints", "webhook_deliveries", "webhook_failures")
    engine.dispose()
    command.downgrade(alembic_config(database_url), "0016")
    with engine.connect() as conn:
        for table in tables:
            assert conn.execute(sa.text(f"SELECT to_regclass('{table}')")).scalar() is None
    upgrade(database_url)
    with engine.connect() as conn:
        for table in tables:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
