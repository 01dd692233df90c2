"""Digest mode (issue 19, must-show 4): 50 constituents of one MP in a day make one digest with
50 rows, across a SIGKILL of the mailer while it sends it.

Real relay and mailer processes against the SMTP catcher. The 50 letters are staged as
``signature.resolved`` events (as the resolver would write them); each supporter's copy goes at
once, saying the letter will be in that day's digest. The day is then made to be over (the
queued rows moved to yesterday) and the mailer's sweep forms and sends the digest. The catcher
stalls on its final dot and the mailer is SIGKILLed meanwhile: either before the server kept it
(the restarted mailer sends it once, after the lease) or after (it arrives twice with the same
Message-ID, and the digest's row says it was handed over twice, as for any letter).
"""

from __future__ import annotations

import csv
import io
import time

import pytest
import sqlalchemy as sa

from shared.campaigns import get_campaign, save_campaign
from tests.integration.mailer_helpers import CAMPAIGN, MP, count, resolved_event, stage_letters
from tests.support import wait_until


def make_digest_campaign(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        campaign = get_campaign(conn, CAMPAIGN)
        assert campaign is not None
        save_campaign(conn, campaign.model_copy(update={"delivery": "digest"}))


def _digests(mail) -> list:  # type: ignore[no-untyped-def]
    return [c for c in mail.messages if str(c.message["Message-ID"]).startswith("<digest.")]


@pytest.mark.fault
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kept", [False, True], ids=["killed-before-kept", "killed-after-kept"])
def test_fifty_constituents_make_one_digest_across_a_sigkill(
    system, mail, engine, kept: bool
) -> None:
    make_digest_campaign(engine)
    mailer = system.services["mailer"]
    mailer.env = {
        **mailer.env,
        "DEARMP_SCHEDULED_SWEEP_SECONDS": "0.5",
        "DEARMP_SEND_LEASE_SECONDS": "3",
    }
    system.start("relay", "mailer")
    events = [
        resolved_event(first_name=f"Jo{n}", comment=f"My own words, number {n}.") for n in range(50)
    ]
    stage_letters(engine, events)

    # Every supporter gets the copy at once, told the letter goes in the day's digest.
    mail.handler.wait_for(50, timeout=60)
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'queued'") == 50,
        30,
        message="the 50 letters queued for the digest",
    )
    copy = mail.messages[0].message
    assert "copy." in str(copy["Message-ID"])
    assert "one email a day" in copy.get_body(("plain",)).get_content()
    assert _digests(mail) == []

    # The day is over; the digest's final dot stalls, and the mailer dies meanwhile.
    mail.handler.stall_seconds, mail.handler.stall_messages = 4, 1
    mail.handler.stall_stores_first = kept
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE letters SET due_day = due_day - 1 WHERE state = 'queued'"))
    if kept:
        wait_until(lambda: len(_digests(mail)) == 1, 30, message="the server to keep the digest")
    else:
        wait_until(lambda: mail.handler.stall_messages == 0, 30, message="the digest's final dot")
    time.sleep(0.3)
    mailer.kill()
    assert (
        count(engine, "SELECT count(*) FROM letters WHERE state = 'sent' AND purpose = 'letter'")
        == 0
    )
    mailer.start()  # the lease (3 s here) ends, and the sweep sends it again

    wait_until(
        lambda: (
            count(
                engine, "SELECT count(*) FROM letters WHERE purpose = 'digest' AND state = 'sent'"
            )
            == 1
        ),
        60,
        message="the digest recorded as sent",
    )
    time.sleep(1)  # room for anything sent twice to arrive
    digests = _digests(mail)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT message_id, sends FROM letters WHERE purpose = 'digest'")
        ).one()
        letters = conn.execute(
            sa.text("SELECT state, count(*) FROM letters WHERE purpose = 'letter' GROUP BY state")
        ).all()
        announced = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE routing_key = 'letter.sent'")
        ).scalar_one()
    assert dict(letters) == {"sent": 50}
    assert announced == 50
    # The kill came after a claim: the row counts two hand-overs ("may be duplicated").
    assert row.sends == 2
    assert {str(d.message["Message-ID"]) for d in digests} == {row.message_id}
    assert len(digests) == (2 if kept else 1)
    print(f"\ndigests at the catcher: {len(digests)}, letters.sends of the digest: {row.sends}")

    message = digests[-1].message
    assert message["X-DearMP-Intended-Recipient"] == MP.email
    assert message["X-DearMP-Digest-Rows"] == "50"
    text = message.get_body(("plain",)).get_content()
    for event in events:
        assert f"mailto:{event.supporter.email}" in text
    assert "My own words, number 49." in text and "1 Test Street, Aldershot, GU11 1AA" in text
    html = message.get_body(("html",)).get_content()
    assert all(html.count(f'href="mailto:{e.supporter.email}"') == 1 for e in events)
    [attachment] = list(message.iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert len(rows) == 50
    assert {r["email"] for r in rows} == {e.supporter.email for e in events}


def test_a_letter_recorded_after_its_days_digest_was_formed_goes_in_the_next_days(
    settings, engine
) -> None:
    """No letter in two digests, none left out: the days are the sweep's ``now``."""
    from datetime import UTC, datetime, timedelta

    from services.mailer import handlers as mailer
    from services.mailer.digests import form_digests
    from shared.messages import Envelope

    make_digest_campaign(engine)
    handle = mailer.bootstrap(settings, engine)
    deps = mailer.make_deps(settings, engine)
    now = datetime.now(UTC)

    def wrote(n: int) -> None:
        for event in [resolved_event() for _ in range(n)]:
            handle(Envelope.wrap(event, correlation_id=event.signature_id))

    def digests() -> dict:  # type: ignore[type-arg]
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT d.due_day, count(l.id) FROM letters d "
                    "LEFT JOIN letters l ON l.digest_id = d.signature_id "
                    "WHERE d.purpose = 'digest' GROUP BY d.due_day"
                )
            ).all()
        return dict(rows)  # type: ignore[arg-type]

    wrote(2)
    assert form_digests(deps, now) == 0  # the day is not over
    assert form_digests(deps, now + timedelta(days=1)) == 1
    today = min(digests())
    assert digests() == {today: 2}
    wrote(1)  # recorded for a day whose digest is formed: it moves to the next day's
    assert form_digests(deps, now + timedelta(days=1)) == 0
    assert form_digests(deps, now + timedelta(days=2)) == 1
    assert digests() == {today: 2, today + timedelta(days=1): 1}
    assert (
        count(engine, "SELECT count(*) FROM letters WHERE state = 'queued' AND digest_id IS NULL")
        == 0
    )
