"""Must-show 3: a consumer SIGKILLed after its DB commit and before its ack.

The broker redelivers the unacked event to the restarted consumer; the inbox (and, for the mailer,
the letter's state) make the redelivery change nothing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared.topology import Topology
from tests.support import (
    confirm_email,
    letters_by_purpose,
    make_signature,
    post_signatures,
    queue_depth,
    wait_until,
)


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


@pytest.mark.fault
def test_resolver_killed_between_commit_and_ack_resolves_once(
    system, mail, engine, amqp_url, namespace, tmp_path
) -> None:
    resolver = system.services["resolver"]
    system.start("relay", "mailer", "updates", "intake")
    resolver.start(
        {"DEARMP_FAULT_KILL_AT": "before_ack", "DEARMP_FAULT_MARKER": str(tmp_path / "k")}
    )

    post_signatures(system.base_url, "guardians-for-children", [make_signature()])
    assert confirm_email(mail.handler.wait_for(1)[0].message).status_code == 200

    assert resolver.wait_exit(60) == -9  # SIGKILLed itself after committing, before acking
    assert (tmp_path / "k").exists()
    assert _count(engine, "SELECT count(*) FROM resolutions") == 1
    assert _count(engine, "SELECT count(*) FROM outbox WHERE routing_key='signature.resolved'") == 1
    queue = Topology(namespace).queue("resolver")
    wait_until(lambda: queue_depth(amqp_url, queue) == 1, 20, message="the unacked event to return")

    resolver.start()  # same marker: runs normally now
    wait_until(lambda: queue_depth(amqp_url, queue) == 0, 30, message="the redelivery to be acked")
    wait_until(
        lambda: "duplicate event ignored" in resolver.output(),
        10,
        message="the resolver to skip the redelivered event",
    )
    assert _count(engine, "SELECT count(*) FROM resolutions") == 1
    assert _count(engine, "SELECT count(*) FROM outbox WHERE routing_key='signature.resolved'") == 1
    assert _count(engine, "SELECT count(*) FROM inbox WHERE consumer='resolver'") == 1
    mail.handler.wait_for(2, timeout=30)
    assert len(letters_by_purpose(mail.messages)["letter"]) == 1


@pytest.mark.fault
def test_mailer_killed_between_commit_and_ack_sends_once(
    system, mail, engine, amqp_url, namespace, tmp_path
) -> None:
    mailer = system.services["mailer"]
    system.start("relay", "resolver", "updates", "intake")
    mailer.start({"DEARMP_FAULT_KILL_AT": "before_ack", "DEARMP_FAULT_MARKER": str(tmp_path / "k")})

    post_signatures(system.base_url, "guardians-for-children", [make_signature(opt_in=True)])
    assert mailer.wait_exit(60) == -9
    assert len(mail.messages) == 1  # the confirmation went out and was committed as sent
    assert _count(engine, "SELECT count(*) FROM letters WHERE state='sent'") == 1
    queue = Topology(namespace).queue("mailer")
    wait_until(lambda: queue_depth(amqp_url, queue) == 1, 20, message="the unacked event to return")

    mailer.start()
    wait_until(lambda: queue_depth(amqp_url, queue) == 0, 30, message="the redelivery to be acked")
    assert confirm_email(mail.messages[0].message).status_code == 200
    mail.handler.wait_for(2, timeout=30)
    wait_until(
        lambda: _count(engine, "SELECT count(*) FROM subscribers") == 1,
        20,
        message="updates to record the subscriber",
    )
    by_purpose = letters_by_purpose(mail.messages)
    assert len(by_purpose["confirmation"]) == 1  # the redelivery sent nothing
    assert len(by_purpose["letter"]) == 1
    assert _count(engine, "SELECT max(sends) FROM letters") == 1


@pytest.mark.fault
def test_mailer_killed_after_the_letter_before_the_copy_sends_each_once(
    system, mail, engine, amqp_url, namespace, tmp_path
) -> None:
    """The statement that records the letter as sent also claims the copy. Killed right after
    it: on redelivery the letter is not sent again, the claimed copy is, once."""
    from tests.integration.mailer_helpers import resolved_event, stage_letters

    mailer = system.services["mailer"]
    system.start("relay")
    marker = tmp_path / "k"
    mailer.start({"DEARMP_FAULT_KILL_AT": "before_follow_on", "DEARMP_FAULT_MARKER": str(marker)})
    event = resolved_event()
    stage_letters(engine, [event])

    assert mailer.wait_exit(60) == -9
    assert marker.read_text() == "before_follow_on"
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT purpose, state FROM letters")).all())
    assert rows == {"letter": "sent", "copy": "sending"}
    assert len(mail.messages) == 1  # the letter only

    mailer.start()
    mail.handler.wait_for(2, timeout=30)
    queue = Topology(namespace).queue("mailer")
    wait_until(lambda: queue_depth(amqp_url, queue) == 0, 30, message="the redelivery to be acked")
    wait_until(
        lambda: _count(engine, "SELECT count(*) FROM inbox WHERE consumer='mailer'") == 1,
        20,
        message="the event to be recorded as handled",
    )
    by_purpose = letters_by_purpose(mail.messages)
    assert len(by_purpose["letter"]) == 1 and len(by_purpose["copy"]) == 1
    with engine.connect() as conn:
        rows = {
            p: (st, n)
            for p, st, n in conn.execute(sa.text("SELECT purpose, state, sends FROM letters"))
        }
    assert rows["letter"] == ("sent", 1)
    assert rows["copy"] == ("sent", 2)  # claimed twice: counted as a possible resend
