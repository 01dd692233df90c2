"""Exactly once when the mail server is slow, and no letter failed for our own set-up.

Against a real SMTP server (aiosmtpd, ``shared.mailcatcher``) that takes 45 s to answer the
final dot (longer than the 30 s clients commonly give up after), or longer than the sending
lease, or answers 530 to MAIL FROM, with the real relay, intake, resolver and mailer processes.
The mailer waits as RFC 5321 says (up to 10 minutes for the final answer), keeps its broker
connection alive meanwhile (the handler runs off the connection's thread), and holds a lease on
each email it is sending, so no other replica sends it meanwhile.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.integration.mailer_helpers import (
    count,
    dearmp_json,
    message_ids,
    resolved_event,
    stage_letters,
)
from tests.support import (
    ServiceProcess,
    confirm_email,
    letters_by_purpose,
    make_signature,
    post_signatures,
    wait_until,
)

CAMPAIGN = "guardians-for-children"


def one_journey(system, mail) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Sign, confirm from the email, and wait for the letter and its copy."""
    post_signatures(system.base_url, CAMPAIGN, [make_signature()])
    confirmation = mail.handler.wait_for(1, timeout=120)[0]
    assert confirm_email(confirmation.message).status_code == 200
    mail.handler.wait_for(3, timeout=180)
    time.sleep(3)  # anything sent twice would arrive now
    return letters_by_purpose(mail.messages)


@pytest.mark.fault
def test_a_server_that_answers_the_final_dot_after_45s_gets_each_email_once(
    system, mail, engine
) -> None:
    """It keeps a message only if the client is still there to hear the answer (aiosmtpd's
    way): a client that gave up at 30 s lost the confirmation, every time."""
    mail.handler.stall_seconds, mail.handler.stall_messages = 45, 1
    system.start()
    got = one_journey(system, mail)
    # The stall landed on the confirmation, and the mailer waited for the answer.
    assert (mail.handler.stalls_waited, mail.handler.stalls_abandoned) == (1, 0)
    assert Counter(len(v) for v in got.values()) == Counter({1: 3}), got
    assert set(got) == {"confirmation", "letter", "copy"}
    assert count(engine, "SELECT count(*) FROM letters WHERE sends <> 1") == 0


@pytest.mark.fault
def test_a_server_that_stores_first_and_answers_after_45s_gets_each_email_once(
    system, mail, engine
) -> None:
    """It keeps the message before it answers (Postfix's way): a client that gave up and tried
    again delivered five confirmations and five letters. (One stalled message shows it: the
    confirmation; the letter and copy that follow go at once.)"""
    mail.handler.stall_seconds, mail.handler.stall_messages = 45, 1  # the confirmation
    mail.handler.stall_stores_first = True
    system.start()
    got = one_journey(system, mail)
    assert (mail.handler.stalls_waited, mail.handler.stalls_abandoned) == (1, 0)
    assert {purpose: len(ids) for purpose, ids in got.items()} == {
        "confirmation": 1,
        "letter": 1,
        "copy": 1,
    }
    assert count(engine, "SELECT count(*) FROM letters WHERE sends <> 1") == 0
    assert count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 3


@pytest.mark.fault
def test_two_mailer_replicas_and_a_stall_longer_than_the_lease_send_one_letter(
    system, mail, engine
) -> None:
    """The server takes 20 s, more than three times the 6 s sending lease: the replica that
    waits renews its lease, so the other never takes the letter over (the same holds for the
    default 60 s lease and a 10-minute wait; a short lease keeps the test short)."""
    system.env["DEARMP_SEND_LEASE_SECONDS"] = "6"
    mail.handler.stall_seconds, mail.handler.stall_messages = 20, 1
    mail.handler.stall_stores_first = True
    second = ServiceProcess("mailer", system.env, tag="second-mailer")
    system.start("relay", "mailer")
    second.start()
    try:
        event = resolved_event()
        stage_letters(engine, [event])
        wait_until(lambda: len(mail.messages) >= 1, 60, message="the letter taken, then stalled")
        # While the first replica waits on the server, the letter's lease is live: the other
        # replica (and a redelivery) cannot send it.
        with engine.connect() as conn:
            lease = conn.execute(
                sa.text("SELECT state, lease_until > now() AS live FROM letters")
            ).one()
        assert lease.state == "sending" and lease.live
        wait_until(
            lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 2,
            150,
            message="letter and copy sent",
        )
        assert (mail.handler.stalls_waited, mail.handler.stalls_abandoned) == (1, 0)
        time.sleep(5)
    finally:
        second.terminate(20)
    ids = message_ids(mail.messages)
    assert ids[f"letter.{event.signature_id}@dearmp.invalid"] == 1
    assert ids[f"copy.{event.signature_id}@dearmp.invalid"] == 1
    assert sum(ids.values()) == 2


@pytest.mark.fault
def test_530_to_mail_from_pauses_sending_and_fails_no_letter(system, mail, engine) -> None:
    """A server that wants a login refuses every message the same way: that is our set-up, not
    the letters. None is failed; sending pauses and says why; once the server is fixed, every
    letter goes, once."""
    mail.handler.refuse_mail_from = 530
    system.start("relay", "mailer")
    events = [resolved_event() for _ in range(5)]
    stage_letters(engine, events)

    def paused() -> bool:
        return bool(dearmp_json(system.env, "status", "--json")["sending_paused"])

    wait_until(paused, 60, message="dearmp status to report the pause")
    status = dearmp_json(system.env, "status", "--json")
    assert "530" in status["sending_paused"][0]["reason"]
    time.sleep(5)  # retries come and go meanwhile
    assert count(engine, "SELECT count(*) FROM letters WHERE state = 'failed'") == 0
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'letter.failed'") == 0
    assert mail.messages == []
    log = system.services["mailer"].output()
    assert "the mail server refuses our set-up: sending paused" in log

    mail.handler.refuse_mail_from = None  # the operator fixes the login
    mail.handler.wait_for(2 * len(events), timeout=120)
    wait_until(lambda: not paused(), 60, message="the pause to end")
    time.sleep(3)
    ids = message_ids(mail.messages)
    assert len(ids) == 2 * len(events) and set(ids.values()) == {1}
    assert count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 2 * len(events)
