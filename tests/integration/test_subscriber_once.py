"""Issue 26: a supporter who signs again (to correct their postcode) is one subscriber, and gets
each campaign update once. The whole system (real Postgres, RabbitMQ, SMTP catcher), then the
updates service's handlers on their own (the dispatcher as the consumer runs it), then
migration 0022 merging the duplicate rows that the old code left."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from services.updates.handlers import bootstrap
from services.updates.models import deliveries, subscribers
from shared.messages import Envelope, SignatureConfirmed, SubscriptionChanged, Supporter
from shared.supporters import normalise_email
from tests.integration.updates_helpers import SLUG, copies_of, publish, wait_for_job
from tests.support import confirm_email, make_signature, wait_for_purpose, wait_until

pytestmark = pytest.mark.integration


def _rows(engine: sa.Engine, email: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(subscribers)
            .where(subscribers.c.email_normalised == normalise_email(email))
            .order_by(subscribers.c.id)
        ).all()


def _confirmation(mail, number: int):
    """The ``number``-th confirmation email (1-based) the catcher got."""

    def found():
        caught = [c for c in mail.messages if "<confirmation." in str(c.message["Message-ID"])]
        return caught[number - 1] if len(caught) >= number else None

    return wait_until(found, 60, 0.2, f"confirmation #{number}")


def test_signing_again_to_correct_the_postcode_gets_each_update_once(system, mail, engine) -> None:
    system.start()
    address = f"again-{uuid.uuid4().hex[:8]}@example.org"
    url = f"{system.base_url}/api/v1/campaigns/{SLUG}/signatures"
    first = make_signature(email=address, postcode="SW1A 9ZZ", opt_in=True)  # no longer in use
    assert httpx.post(url, json=first, timeout=10).status_code == 202
    confirm_email(_confirmation(mail, 1).message)
    wait_for_purpose(mail, "unresolvable", 1)
    wait_until(lambda: len(_rows(engine, address)) == 1, 30, 0.2, "the first subscription")

    again = make_signature(email=address, postcode="GU11 1AA", opt_in=True)
    assert httpx.post(url, json=again, timeout=10).status_code == 202
    confirm_email(_confirmation(mail, 2).message)
    wait_for_purpose(mail, "letter", 1)
    with engine.connect() as conn:
        signature_id = conn.execute(
            sa.text("SELECT id FROM signatures WHERE email_normalised = :e"),
            {"e": normalise_email(address)},
        ).scalar_one()
    # The one row now follows the new signature (the confirmation is handled in its own time).
    wait_until(
        lambda: [r.signature_id for r in _rows(engine, address)] == [signature_id],
        30,
        0.2,
        "the subscription to follow the new signature",
    )

    number = publish(engine)
    done = wait_for_job(engine, number)
    assert (done.total, done.sent) == (1, 1)
    copies = wait_until(lambda: copies_of(mail.messages, number), 30, 0.2, "the update")
    assert len(copies) == 1
    [row] = _rows(engine, address)
    assert row.subscribed and len(row.earlier_signature_ids) == 1


def _confirmed(
    signature_id: uuid.UUID, email: str, *, opt_in: bool, signed_at: datetime, at: datetime
) -> Envelope:
    supporter = Supporter(
        first_name="Jo",
        last_name="Bloggs",
        email=email,
        postcode="GU11 1AA",
        opt_in=opt_in,
        language="cy",
        signed_at=signed_at,
    )
    event = SignatureConfirmed(signature_id=signature_id, campaign=SLUG, supporter=supporter)
    return Envelope.wrap(event, correlation_id=signature_id).model_copy(update={"occurred_at": at})


def _left(signature_id: uuid.UUID, at: datetime, subscribed: bool = False) -> Envelope:
    event = SubscriptionChanged(
        signature_id=signature_id, campaign=SLUG, scope="campaign", subscribed=subscribed
    )
    return Envelope.wrap(event).model_copy(update={"occurred_at": at})


def test_the_newest_signature_takes_the_row_over_and_old_links_still_work(settings, engine) -> None:
    handle = bootstrap(settings, engine)
    email = "Jo.Bloggs@Example.org"
    t0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
    old, new = uuid.uuid4(), uuid.uuid4()
    handle(_confirmed(old, email, opt_in=True, signed_at=t0, at=t0 + timedelta(minutes=1)))
    handle(
        _confirmed(
            new,
            "jo.bloggs@example.org",
            opt_in=True,
            signed_at=t0 + timedelta(days=1),
            at=t0 + timedelta(days=1, minutes=1),
        )
    )
    [row] = _rows(engine, email)
    assert (row.signature_id, row.earlier_signature_ids, row.subscribed) == (new, [old], True)
    assert row.language == "cy"

    # A late (redelivered or replayed) confirmation of the old signature changes nothing.
    handle(_confirmed(old, email, opt_in=True, signed_at=t0, at=t0 + timedelta(minutes=1)))
    assert [(r.signature_id, r.earlier_signature_ids) for r in _rows(engine, email)] == [
        (new, [old])
    ]

    # The unsubscribe link in an email sent before they signed again names the old signature.
    handle(_left(old, t0 + timedelta(days=2)))
    [row] = _rows(engine, email)
    assert not row.subscribed
    handle(_left(new, t0 + timedelta(days=3), subscribed=True))
    assert _rows(engine, email)[0].subscribed


def test_signing_again_without_ticking_updates_leaves_them(settings, engine) -> None:
    handle = bootstrap(settings, engine)
    email = "sam@example.org"
    t0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
    old, new = uuid.uuid4(), uuid.uuid4()
    handle(_confirmed(old, email, opt_in=True, signed_at=t0, at=t0 + timedelta(minutes=1)))
    handle(
        _confirmed(
            new,
            email,
            opt_in=False,
            signed_at=t0 + timedelta(days=1),
            at=t0 + timedelta(days=1, minutes=1),
        )
    )
    [row] = _rows(engine, email)
    assert (row.signature_id, row.subscribed) == (new, False)
    assert row.unsubscribed_at == t0 + timedelta(days=1, minutes=1)
    # Someone who never opted in has no row at all.
    handle(_confirmed(uuid.uuid4(), "never@example.org", opt_in=False, signed_at=t0, at=t0))
    assert _rows(engine, "never@example.org") == []


def test_migration_0022_merges_the_duplicates(engine, database_url) -> None:
    from alembic import command

    from shared.db import alembic_config, upgrade

    engine.dispose()
    command.downgrade(alembic_config(database_url), "0021")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    old, new, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rows = [
        # Jo: signed twice, and pressed "unsubscribe" in one of the two copies after the second.
        (old, "jo@example.org", t0, False, t0 + timedelta(days=5)),
        (new, "jo@example.org", t0 + timedelta(days=1), True, None),
        (other, "sam@example.org", t0, True, None),
    ]
    with engine.begin() as conn:
        ids = [
            conn.execute(
                sa.text(
                    "INSERT INTO subscribers (campaign, signature_id, email, email_normalised, "
                    "first_name, created_at, subscribed, preference_changed_at) VALUES "
                    "(:c, :s, :e, :e, 'X', :t, :sub, :p) RETURNING id"
                ),
                {"c": SLUG, "s": s, "e": e, "t": t, "sub": sub, "p": p},
            ).scalar_one()
            for s, e, t, sub, p in rows
        ]
        job = conn.execute(
            sa.text(
                "INSERT INTO fanout_jobs (campaign, update_number, status, upto, total, retry_at,"
                " created_at, updated_at) VALUES (:c, 1, 'done', 0, 2, now(), now(), now())"
                " RETURNING id"
            ),
            {"c": SLUG},
        ).scalar_one()
        for subscriber in ids[:2]:  # the defect: Jo got update 1 twice
            conn.execute(
                sa.text(
                    "INSERT INTO update_deliveries (job_id, subscriber_id, state) "
                    "VALUES (:j, :s, 'sent')"
                ),
                {"j": job, "s": subscriber},
            )
    upgrade(database_url)
    jo = _rows(engine, "jo@example.org")
    assert [(r.signature_id, r.earlier_signature_ids, r.subscribed) for r in jo] == [
        (new, [old], False)
    ]
    assert len(_rows(engine, "sam@example.org")) == 1
    with engine.connect() as conn:
        assert conn.execute(
            sa.select(deliveries.c.subscriber_id).where(deliveries.c.job_id == job)
        ).scalars().all() == [jo[0].id]
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (campaign, signature_id, email, email_normalised, "
                "first_name, created_at) VALUES (:c, :s, 'x', 'jo@example.org', 'X', now())"
            ),
            {"c": SLUG, "s": uuid.uuid4()},
        )
