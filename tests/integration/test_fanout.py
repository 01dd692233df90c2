"""Publishing an update fans it out: real Postgres, RabbitMQ, the relay and the updates service as
processes, and an SMTP catcher (aiosmtpd). Every subscriber gets exactly one copy, with one-click
unsubscribe; someone who leaves before their copy goes out is skipped; the SMTP server refusing
for a while pauses the fan-out without losing anyone; a worker killed half-way (SIGKILL) and
restarted ends with everyone emailed once, and any copy sent twice was a ``sending`` delivery at
the moment of the kill.
"""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.updates.fanout import Fanout
from services.updates.jobs import create_job
from services.updates.models import deliveries
from services.updates.sender import UpdateSender
from shared.mail import INTENDED_HEADER
from tests.integration.updates_helpers import (
    SLUG,
    Sub,
    add_subscribers,
    copies_of,
    delivery_states,
    is_subscribed,
    job_row,
    message_id_counts,
    message_id_for,
    one_click,
    publish,
    unsubscribe_link,
    wait_for_job,
)
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.integration

FAST_PAUSES = {
    "DEARMP_FANOUT_PAUSE_SECONDS": "0.3",
    "DEARMP_FANOUT_PAUSE_MAX_SECONDS": "1",
    "DEARMP_FANOUT_BATCH": "25",
    "DEARMP_FANOUT_PAGE": "60",
    "DEARMP_FANOUT_SWEEP_SECONDS": "0.2",
}


def by_recipient(caught: list, number: int) -> dict[str, list]:
    out: dict[str, list] = {}
    for c in copies_of(caught, number):
        out.setdefault(str(c.message[INTENDED_HEADER]), []).append(c)
    return out


def test_every_subscriber_gets_exactly_one_copy_with_one_click_unsubscribe(
    system, mail, engine
) -> None:
    system.env.update(FAST_PAUSES)
    subs = add_subscribers(engine, 60)
    add_subscribers(engine, 5, campaign="specialist-support-for-child-victims")  # not this one
    system.start("relay", "updates")
    number = publish(engine)
    done = wait_for_job(engine, number)
    assert (done.total, done.sent, done.skipped, done.failed) == (60, 60, 0, 0)
    assert done.possible_duplicates == 0

    caught = mail.handler.wait_for(60, timeout=60)
    received = by_recipient(caught, number)
    assert sorted(received) == sorted(s.email for s in subs)
    assert all(len(copies) == 1 for copies in received.values())
    assert len(copies_of(caught, number)) == 60  # nothing for the other campaign's subscribers
    for sub in subs:
        [copy] = received[sub.email]
        assert copy.rcpt_tos == ["sandbox@example.org"]  # sandbox: nobody real gets mail
        # Parsed from the bytes the SMTP server got, as a mail client would.
        msg = email.message_from_bytes(copy.data, policy=email.policy.default)
        assert str(msg["Message-ID"]) == message_id_for(sub, number)
        assert str(msg["From"]) == "Dear MP <updates@dearmp.invalid>"
        assert str(msg["To"]) == sub.email
        assert str(msg["Subject"]) == f"Update #{number}: We met the minister"
        assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        links = [part.strip(" <>") for part in str(msg["List-Unsubscribe"]).split(",")]
        assert links[0].startswith(f"{system.base_url}/unsubscribe/")
        assert links[1].startswith("mailto:unsubscribe@dearmp.invalid?subject=")
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "It went well." in text and links[0] in text
        assert "<strong>well</strong>" in html and "<script>" not in html
    assert set(delivery_states(engine, number).values()) == {"sent"}


def test_who_leaves_before_their_copy_goes_out_is_skipped_and_4xx_only_pauses(
    system, mail, engine
) -> None:
    system.env.update(FAST_PAUSES)
    subs = add_subscribers(engine, 40)
    leaver, stayer = subs[-1], subs[0]
    system.start("relay", "updates", "intake")
    first = publish(engine, title="First news")
    wait_for_job(engine, first)
    link = unsubscribe_link(by_recipient(mail.handler.wait_for(40), first)[leaver.email][0].message)

    # The SMTP server refuses for a while (451): the next update's fan-out waits, nothing is lost.
    mail.handler.refuse_code = 451
    second = publish(engine, title="Second news")
    wait_for_job(engine, second, status="waiting")
    assert job_row(engine, second).sent == 0

    # Meanwhile the last subscriber leaves with their mail provider's one-click unsubscribe,
    # from the address in the first update's List-Unsubscribe header: no cookie, no CSRF token.
    for _ in range(2):  # a provider may POST twice: the same answer, the same outcome
        response = one_click(link)
        assert response.status_code == 200, response.text
        assert "You have unsubscribed" in response.text
    wait_until(lambda: not is_subscribed(engine, leaver), 60, 0.2, "the unsubscribe to apply")

    mail.handler.refuse_code = None
    done = wait_for_job(engine, second)
    assert (done.sent, done.skipped, done.failed) == (39, 1, 0)
    received = by_recipient(mail.messages, second)
    assert leaver.email not in received
    assert sorted(received) == sorted(s.email for s in subs[:-1])
    assert all(len(copies) == 1 for copies in received.values())
    assert delivery_states(engine, second)[leaver.id] == "skipped"
    assert is_subscribed(engine, stayer)


@pytest.mark.fault  # it kills a worker at a chosen moment: run alone (make test)
def test_a_worker_killed_half_way_and_restarted_emails_everyone_once(system, mail, engine) -> None:
    system.env.update(FAST_PAUSES)
    count = 400
    subs = add_subscribers(engine, count)
    mail.handler.delay = 0.01  # slow enough to be killed half-way on a busy machine
    system.start("relay", "updates")
    number = publish(engine)
    wait_until(
        lambda: len(copies_of(mail.messages, number)) >= count // 3, 120, 0.05, "a third sent"
    )
    system.services["updates"].kill()  # SIGKILL: no clean-up of any kind
    at_kill = len(copies_of(mail.messages, number))
    states = delivery_states(engine, number)
    sending = {sub_id for sub_id, state in states.items() if state == "sending"}
    assert at_kill < count, "the fan-out finished before the kill; the test proves nothing"

    system.services["updates"].start()
    done = wait_for_job(engine, number, timeout=240)
    counts = message_id_counts(mail.messages, number)
    assert set(counts) == {message_id_for(s, number) for s in subs}  # everyone got it
    twice = {mid for mid, n in counts.items() if n > 1}
    by_id = {message_id_for(s, number): s.id for s in subs}
    # A copy that went out twice was marked 'sending' when the worker died, and nothing else.
    assert {by_id[mid] for mid in twice} <= sending
    assert max(counts.values()) <= 2
    assert done.possible_duplicates == len(sending)
    assert (done.sent, done.skipped, done.failed) == (count, 0, 0)
    print(
        f"\nkilled after {at_kill}/{count} copies; 'sending' at the kill: {len(sending)}; "
        f"copies received twice: {len(twice)}"
    )


@pytest.mark.fault  # it kills a worker at a chosen moment: run alone (make test)
def test_killed_right_after_smtp_the_one_copy_in_doubt_is_the_only_duplicate(
    system, mail, engine, tmp_path: Path
) -> None:
    system.env.update(FAST_PAUSES)
    subs = add_subscribers(engine, 30)
    system.start("relay")
    updates = system.services["updates"]
    kill_after_first_send = {
        "DEARMP_FAULT_KILL_AT": "fanout_after_smtp",
        "DEARMP_FAULT_MARKER": str(tmp_path / "killed"),
    }
    updates.start(extra_env=kill_after_first_send)
    number = publish(engine)
    assert updates.wait_exit(120) != 0  # it killed itself after the SMTP server took a copy
    states = delivery_states(engine, number)
    sending = [sub_id for sub_id, state in states.items() if state == "sending"]
    assert len(sending) == 1  # the window is one message

    updates.start(extra_env=kill_after_first_send)  # the marker stops a second kill
    done = wait_for_job(engine, number)
    counts = message_id_counts(mail.messages, number)
    [twice] = [mid for mid, n in counts.items() if n == 2]
    assert twice == message_id_for(next(s for s in subs if s.id == sending[0]), number)
    assert len(counts) == 30 and sum(counts.values()) == 31
    assert done.possible_duplicates == 1
    assert "may arrive twice" in updates.output()


def test_a_5xx_for_one_address_fails_that_copy_and_the_rest_go_out(settings, engine, mail) -> None:
    subs: list[Sub] = add_subscribers(engine, 12)
    number = publish(engine)
    with engine.begin() as conn:
        assert create_job(conn, SLUG, number)
        assert not create_job(conn, SLUG, number)  # one job per update, however often asked
    live = settings.model_copy(update={"delivery": "live", "fanout_batch": 5, "fanout_page": 7})
    # The real server refuses one address at RCPT (the sandbox is off: live delivery).
    mail.handler.refuse_recipients = {subs[3].email}
    sender = UpdateSender(mail.url)
    assert Fanout(engine, live, sender)() == 12
    done = job_row(engine, number)
    assert (done.status, done.sent, done.failed, done.skipped) == ("done", 11, 1, 0)
    with engine.connect() as conn:
        error = conn.execute(
            sa.select(deliveries.c.error).where(deliveries.c.subscriber_id == subs[3].id)
        ).scalar_one()
    assert error.startswith("550") and subs[3].email not in error
    assert sorted(c.rcpt_tos[0] for c in mail.messages) == sorted(
        s.email for s in subs if s is not subs[3]
    )
    # A second sweep finds nothing left to do.
    assert Fanout(engine, live, sender)() == 0
    assert len(mail.messages) == 11


def test_a_connection_lost_after_a_copy_went_counts_it_and_sends_it_again(
    settings, engine, mail
) -> None:
    """The server takes a copy and the connection drops before its 250: the fan-out pauses,
    counts that copy as a possible duplicate, and sends it again (same Message-ID) with the rest;
    the sender does not quietly send it twice by itself."""
    subs: list[Sub] = add_subscribers(engine, 6)
    number = publish(engine)
    with engine.begin() as conn:
        assert create_job(conn, SLUG, number)
    live = settings.model_copy(
        update={"delivery": "live", "fanout_pause_seconds": 0.2, "fanout_pause_max_seconds": 0.2}
    )
    sender = UpdateSender(mail.url)
    mail.handler.drop_after_taking = 1  # the first copy
    Fanout(engine, live, sender)()
    paused = job_row(engine, number)
    assert paused.status == "waiting" and paused.possible_duplicates == 1
    assert len(mail.messages) == 1
    wait_until(
        lambda: Fanout(engine, live, sender)() and job_row(engine, number).status == "done", 20
    )
    done = job_row(engine, number)
    assert (done.sent, done.possible_duplicates) == (6, 1)
    counts = message_id_counts(mail.messages, number)
    assert sorted(counts.values()) == [1, 1, 1, 1, 1, 2]
    assert set(counts) == {message_id_for(s, number) for s in subs}


@pytest.mark.fault
def test_a_server_that_takes_45s_to_answer_gets_each_copy_once(settings, engine, mail) -> None:
    """The fan-out waits for a slow server as RFC 5321 says (a client that gave up at 30 s
    sent that copy again): one email per subscriber, even when the server stalls."""
    subs: list[Sub] = add_subscribers(engine, 3)
    number = publish(engine)
    with engine.begin() as conn:
        assert create_job(conn, SLUG, number)
    live = settings.model_copy(update={"delivery": "live"})
    mail.handler.stall_seconds, mail.handler.stall_messages = 45, 1
    mail.handler.stall_stores_first = True  # kept before the answer, as Postfix does
    wait_until(
        lambda: Fanout(engine, live, UpdateSender(mail.url))() is not None
        and job_row(engine, number).status == "done",
        120,
    )
    assert (mail.handler.stalls_waited, mail.handler.stalls_abandoned) == (1, 0)
    counts = message_id_counts(mail.messages, number)
    assert set(counts) == {message_id_for(s, number) for s in subs}
    assert sorted(counts.values()) == [1, 1, 1]
    assert job_row(engine, number).possible_duplicates == 0


def _dearmp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.ops.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_publishes_and_follows_the_fanout(system, mail, engine, tmp_path: Path) -> None:
    system.env.update(FAST_PAUSES)
    add_subscribers(engine, 50)
    body = tmp_path / "update.md"
    body.write_text("We handed in **the letters** today.\n", encoding="utf-8")
    system.start("relay", "updates")

    done = _dearmp(
        system.env,
        "updates",
        "publish",
        SLUG,
        "--title",
        "Letters delivered",
        "--body-file",
        str(body),
    )
    assert done.returncode == 0, done.stderr
    assert "published update #1 of guardians-for-children" in done.stdout
    assert "emailed 50 subscribers" in done.stdout
    assert "50/50" in done.stderr  # the progress bar reached the end
    assert len(copies_of(mail.messages, 1)) == 50

    quiet = _dearmp(
        system.env,
        "updates",
        "publish",
        SLUG,
        "--title",
        "Not emailed",
        "--body-file",
        str(body),
        "--no-email",
    )
    assert quiet.returncode == 0 and "not emailed" in quiet.stdout
    assert job_row(engine, 2) is None

    for args, expected in (
        (("no-such-campaign", str(body)), "dearmp: there is no campaign 'no-such-campaign'"),
        ((SLUG, str(tmp_path / "missing.md")), f"dearmp: no such file: {tmp_path / 'missing.md'}"),
    ):
        failed = _dearmp(
            system.env, "updates", "publish", args[0], "--title", "T", "--body-file", args[1]
        )
        assert failed.returncode == 1
        assert failed.stderr.strip() == expected
    assert Counter(str(c.message["Subject"]) for c in mail.messages) == {
        "Update #1: Letters delivered": 50
    }
