"""The daily cap per MP (DEARMP_MP_DAILY_CAP): beyond it, letters wait for the next day, the
supporter's copy says when theirs goes, and the sweep sends it then, once. The mailer's handler
and sweep run in this process against real Postgres and the SMTP catcher; "the next day" is the
sweep's ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.mailer import handlers as mailer
from services.mailer.scheduled import release_due_letters, today
from shared.messages import Envelope
from tests.integration.mailer_helpers import MP, count, resolved_event

MIGRATION_BEFORE = "0018"  # the revision before the one that adds queued letters


def _purposes(mail) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(str(c.message["Message-ID"]).strip("<").split(".")[0] for c in mail.messages)


def test_a_cap_of_two_sends_two_letters_today_and_the_third_tomorrow(
    settings, engine, mail
) -> None:
    settings = settings.model_copy(update={"mp_daily_cap": 2})
    handle = mailer.bootstrap(settings, engine)
    events = [resolved_event() for _ in range(3)]
    envelopes = [Envelope.wrap(e, correlation_id=e.signature_id) for e in events]
    for envelope in envelopes:
        handle(envelope)
    handle(envelopes[2])  # redelivered: counted once, its copy not sent again
    mail.handler.wait_for(5, timeout=20)
    assert _purposes(mail) == ["copy", "copy", "copy", "letter", "letter"]

    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text("SELECT signature_id, due_day FROM letters WHERE state = 'queued'")
        ).one()
    tomorrow = today() + timedelta(days=1)
    assert (waiting.signature_id, waiting.due_day) == (events[2].signature_id, tomorrow)
    told = next(
        c.message for c in mail.messages if str(events[2].signature_id) in c.message["Message-ID"]
    )
    text = told.get_body(("plain",)).get_content()
    assert "yours will go on" in text and str(tomorrow.year) in text

    deps = mailer.make_deps(settings, engine)
    assert release_due_letters(deps) == 0  # not today
    assert release_due_letters(deps, now=datetime.now(UTC) + timedelta(days=1)) == 1
    assert release_due_letters(deps, now=datetime.now(UTC) + timedelta(days=1)) == 0
    mail.handler.wait_for(6, timeout=20)
    late = mail.messages[-1].message
    assert late["Message-ID"] == f"<letter.{events[2].signature_id}@dearmp.invalid>"
    assert late["X-DearMP-Intended-Recipient"] == MP.email
    assert late["Reply-To"] is not None and events[2].supporter.email in late["Reply-To"]
    assert (
        count(engine, "SELECT count(*) FROM letters WHERE purpose = 'letter' AND state = 'sent'")
        == 3
    )
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'letter.sent'") == 3

    # The day after: the cap counts afresh, the released letter among that day's.
    fourth = resolved_event()
    handle(Envelope.wrap(fourth, correlation_id=fourth.signature_id))
    with engine.connect() as conn:
        days = dict(
            conn.execute(
                sa.text("SELECT due_day, count(*) FROM letters WHERE purpose = 'letter' GROUP BY 1")
            ).all()
        )
    assert days == {today(): 2, tomorrow: 2}


def test_the_migration_for_queued_letters_goes_down_and_up(engine, database_url) -> None:
    from alembic import command

    from shared.db import alembic_config, upgrade

    engine.dispose()
    command.downgrade(alembic_config(database_url), MIGRATION_BEFORE)
    with engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'letters'"
            )
        ).scalars()
        assert "due_day" not in set(columns)
    upgrade(database_url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM letters WHERE due_day IS NULL")).scalar()
            == 0
        )


def test_an_erased_supporters_waiting_letter_never_goes(settings, engine, mail) -> None:
    from services.mailer.retention import erase_supporter
    from shared.supporters import supporter_key

    settings = settings.model_copy(update={"mp_daily_cap": 1})
    handle = mailer.bootstrap(settings, engine)
    first, waiting = resolved_event(), resolved_event()
    for event in (first, waiting):
        handle(Envelope.wrap(event, correlation_id=event.signature_id))
    mail.handler.wait_for(3, timeout=20)  # the first letter, and both copies
    key = supporter_key(settings.secret_key, waiting.supporter.email)
    with engine.begin() as conn:
        removed = erase_supporter(conn, key, datetime.now(UTC))
    assert removed["letters"] == 2  # the waiting letter (deleted) and the copy (scrubbed)
    assert count(engine, "SELECT count(*) FROM letters WHERE state = 'queued'") == 0
    deps = mailer.make_deps(settings, engine)
    assert release_due_letters(deps, now=datetime.now(UTC) + timedelta(days=1)) == 0
