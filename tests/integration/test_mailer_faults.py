"""Fault tests for the mailer: the SMTP server away for 30 s, permanent refusals, and the mailer
SIGKILLed at random moments while it sends 1,000 letters.

Letters are produced by writing ``signature.resolved`` events straight into the outbox (as the
resolver would), with the real relay and mailer processes running against a real SMTP catcher.
Every letter is followed by a copy to the supporter, so N letters are 2N messages.
"""

from __future__ import annotations

import random
import time

import pytest
import sqlalchemy as sa

from shared.topology import Topology
from tests.integration.mailer_helpers import (
    count,
    dearmp,
    dearmp_json,
    message_ids,
    resolved_event,
    stage_letters,
)
from tests.support import queue_depth, wait_until


def _expected_ids(events: list, domain: str = "dearmp.invalid") -> set[str]:
    return {f"{p}.{e.signature_id}@{domain}" for e in events for p in ("letter", "copy")}


def _resent(engine: sa.Engine) -> dict[str, int]:
    """Message-IDs whose row was handed to SMTP more than once (sends > 1)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT message_id, sends FROM letters WHERE sends > 1")).all()
    return {r.message_id.strip("<>"): r.sends for r in rows}


@pytest.mark.fault
def test_smtp_down_for_30s_then_back_every_letter_delivered_once(
    system, mail, engine, amqp_url, namespace
) -> None:
    system.start("relay", "mailer")
    events = [resolved_event() for _ in range(100)]
    stage_letters(engine, events)
    mail.handler.wait_for(30, timeout=60)
    mail.stop()  # mid-run: open connections dropped, nothing listening
    before = len(mail.messages)
    print(f"\nSMTP server stopped after {before} of {2 * len(events)} messages")
    time.sleep(30)
    with engine.connect() as conn:
        failed = conn.execute(
            sa.text("SELECT purpose, error FROM letters WHERE state = 'failed'")
        ).all()
    assert failed == [], "an outage must not fail a letter"
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue("mailer")) == 0
    mail.start()  # a new server on the same port

    mail.handler.wait_for(2 * len(events), timeout=120)
    wait_until(
        lambda: (
            count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 2 * len(events)
        ),
        60,
        message="every letter and copy recorded as sent",
    )
    time.sleep(1)  # room for a duplicate to show up
    seen = message_ids(mail.messages)
    duplicates = {mid: n for mid, n in seen.items() if n > 1}
    resent = _resent(engine)
    print(
        f"after the outage: {len(seen)} distinct messages, duplicates {duplicates}, "
        f"rows with letters.sends > 1: {len(resent)}"
    )
    assert set(seen) == _expected_ids(events), "lost or unexpected messages"
    assert duplicates == {}
    # Refused connections are not hand-overs: the send counts were given back each time.
    assert resent == {}


@pytest.mark.fault
def test_550_answers_fail_the_letters_and_list_them(system, mail, engine) -> None:
    mail.handler.refuse_code = 550
    system.start("relay", "mailer")
    events = [resolved_event() for _ in range(3)]
    stage_letters(engine, events)
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'failed'") == 3,
        60,
        message="the letters to fail",
    )
    wait_until(
        lambda: (
            count(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'letter.failed'") == 3
        ),
        30,
        message="letter.failed for each",
    )
    assert mail.messages == []
    assert count(engine, "SELECT count(*) FROM letters WHERE purpose = 'copy'") == 0
    assert count(engine, "SELECT max(sends) FROM letters") == 1  # a 5xx is not retried

    listed = dearmp_json(system.env, "letters", "failed", "--json")
    assert {r["signature_id"] for r in listed} == {str(e.signature_id) for e in events}
    for row in listed:
        assert row["purpose"] == "letter" and row["campaign"] == "guardians-for-children"
        assert row["reason"].startswith("550") and row["failed_at"]
        assert row["recipient"] == "r***@parliament.uk"
    table = dearmp(system.env, "letters", "failed")
    assert table.returncode == 0 and table.stdout.strip().endswith("3 failed")
    assert "real.member.mp@parliament.uk" not in table.stdout
    assert all(e.supporter.email not in table.stdout for e in events)


@pytest.mark.fault
def test_a_letter_the_server_took_before_the_connection_dropped_goes_again_counted(
    system, mail, engine
) -> None:
    """The only kind of duplicate there is, made on purpose: the server takes the letter and the
    connection drops before its 250 reaches the mailer. The event is retried, the letter goes
    again with the same Message-ID, and the row says it was handed over twice."""
    system.start("relay", "mailer")
    mail.handler.drop_after_taking = 1
    event = resolved_event()
    stage_letters(engine, [event])
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 2,
        60,
        message="the letter and the copy recorded as sent",
    )
    time.sleep(0.5)
    seen = message_ids(mail.messages)
    letter_id = f"letter.{event.signature_id}@dearmp.invalid"
    assert seen == {letter_id: 2, f"copy.{event.signature_id}@dearmp.invalid": 1}
    assert _resent(engine) == {letter_id: 2}


@pytest.mark.fault
@pytest.mark.timeout(240)
def test_sigkill_at_random_while_sending_1000_letters_loses_none(
    system, mail, engine, amqp_url, namespace
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    mailer = system.services["mailer"]
    mailer.threads = 4
    system.start("relay", "mailer")
    events = [resolved_event() for _ in range(1000)]
    stage_letters(engine, events)
    total = 2 * len(events)

    kills = 0
    mail.handler.wait_for(50, timeout=60)  # sending has begun
    while kills < 8 and len(mail.messages) < total * 0.9:
        # Each kill lands while mail is going out: after the restarted mailer has sent again.
        resumed_from = len(mail.messages)
        wait_until(lambda n=resumed_from: len(mail.messages) > n, 60, 0.02, "the mailer sending")
        time.sleep(rng.uniform(0.2, 1.0))
        at_kill = len(mail.messages)
        mailer.kill()
        assert at_kill < total, "every letter was out before the kill; it proves nothing"
        kills += 1
        mailer.start()
    print(f"\nseed {seed}: {kills} SIGKILLs, {len(mail.messages)} of {total} messages by then")
    assert kills >= 3, f"only {kills} kills landed while letters were going out"

    mail.handler.wait_for(total, timeout=150)
    queue = Topology(namespace).queue("mailer")
    wait_until(lambda: queue_depth(amqp_url, queue) == 0, 60, message="the queue to drain")
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == total,
        60,
        message="every letter and copy recorded as sent",
    )
    time.sleep(1)
    seen = message_ids(mail.messages)
    expected = _expected_ids(events)
    lost = expected - set(seen)
    duplicates = {mid: n for mid, n in seen.items() if n > 1}
    resent = _resent(engine)
    print(
        f"messages at the catcher {len(mail.messages)}, distinct {len(seen)}, lost {len(lost)}; "
        f"duplicates at the catcher {sum(n - 1 for n in duplicates.values())} "
        f"({len(duplicates)} messages: "
        f"{sum(1 for m in duplicates if m.startswith('letter.'))} letters, "
        f"{sum(1 for m in duplicates if m.startswith('copy.'))} copies); "
        f"rows with letters.sends > 1: {len(resent)} (sends total {sum(resent.values())})"
    )
    assert not lost, f"{len(lost)} messages lost"
    assert set(seen) == expected
    # A duplicate can only come from a crash between the SMTP server's acceptance and the
    # commit: the row was then handed to SMTP again, so its send count says so.
    unexplained = {mid for mid in duplicates if resent.get(mid, 1) < duplicates[mid]}
    assert not unexplained, f"duplicates not explained by letters.sends: {unexplained}"
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue("mailer")) == 0
