"""Bounces (issue 19): each email's VERP return path; the bounce processor reads DSNs (RFC 3464)
and non-standard bounces (flufl.bounce) sent to it over SMTP, marks the email bounced, holds
further letters to an MP's address that bounced and sends nothing more to a supporter's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import Message

import sqlalchemy as sa

from services.mailer.bounces.record import clear_address
from services.mailer.models import bounces, letters, pending_confirmations
from services.mailer.verp import letter_id_from, return_path
from services.ops.status import collect_status, render_status
from shared.messages import Target
from tests.integration.bounce_helpers import (
    caught_for,
    deliver_bounce,
    dsn,
    make_sent_letter,
    qmail_bounce,
    receiver,
    state_of,
)
from tests.integration.mailer_helpers import CAMPAIGN, count, resolved_event, stage_letters
from tests.support import ServiceProcess, free_port, wait_until

__all__ = ["receiver"]  # a fixture

MP2 = Target(name="Other Member", email="other.member.mp@parliament.uk", party="Independent")


def test_a_dsn_marks_the_letter_bounced_and_holds_the_next_letter_to_that_mp(
    system, mail, engine, receiver
) -> None:
    system.start("relay", "mailer")
    first = resolved_event()
    stage_letters(engine, [first])
    mail.handler.wait_for(2, timeout=30)
    (letter,) = caught_for(mail, first.signature_id)
    # The letter's own return path, signed; the From header is unchanged.
    assert letter.mail_from.startswith("bounces+") and letter.mail_from.endswith("@dearmp.invalid")
    assert letter_id_from(letter.mail_from, receiver.secret_key) is not None
    assert letter.message["From"].addresses[0].addr_spec == "letters@dearmp.invalid"
    (copy,) = caught_for(mail, first.signature_id, "copy")
    assert copy.mail_from != letter.mail_from  # every email its own

    deliver_bounce(receiver, letter.mail_from, dsn(letter.mail_from, letter.message))
    wait_until(lambda: state_of(engine, first.signature_id) == "bounced", 10)
    with engine.connect() as conn:
        error = conn.execute(
            sa.select(letters.c.error).where(
                letters.c.signature_id == first.signature_id, letters.c.purpose == "letter"
            )
        ).scalar()
        kinds = conn.execute(sa.select(bounces.c.kind, bounces.c.how)).all()
    assert error.startswith("bounced: 5.1.1") and "real.member" not in error  # no address kept
    assert kinds == [("hard", "dsn")]
    # letter.failed announced, so intake shows the letter as failed
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'letter.failed'") == 1

    second = resolved_event()  # another supporter, the same MP
    stage_letters(engine, [second])
    wait_until(lambda: state_of(engine, second.signature_id) == "held", 15)
    assert not caught_for(mail, second.signature_id)
    assert not caught_for(mail, second.signature_id, "copy")  # the copy follows the letter
    status = render_status(collect_status(receiver))
    assert "Bounces: 1 hard, 0 soft" in status
    assert (
        "MP address real.member.mp@parliament.uk bounced" in status and "1 letters held" in status
    )

    assert clear_address(engine, receiver.secret_key, "Real.Member.MP@parliament.uk")
    wait_until(lambda: state_of(engine, second.signature_id, "copy") == "sent", 15)
    assert len(caught_for(mail, second.signature_id)) == 1


def test_a_non_standard_bounce_is_only_a_signal_and_a_soft_one_changes_nothing(
    system, mail, engine, receiver
) -> None:
    """flufl.bounce reads a non-standard bounce; what it finds is kept as a soft signal only
    (issue 25: heuristics read prose, which a supporter's quoted comment can imitate), so the
    MP's address is not held. A delayed DSN (4.x.x) is kept and changes nothing either."""
    system.start("relay", "mailer")
    soft, heuristic = resolved_event(), resolved_event(target=MP2)
    stage_letters(engine, [soft, heuristic])
    mail.handler.wait_for(4, timeout=30)
    (soft_letter,) = caught_for(mail, soft.signature_id)
    (heuristic_letter,) = caught_for(mail, heuristic.signature_id)

    delayed = dsn(soft_letter.mail_from, soft_letter.message, status="4.2.2", action="delayed")
    deliver_bounce(receiver, soft_letter.mail_from, delayed)
    deliver_bounce(receiver, heuristic_letter.mail_from, qmail_bounce(heuristic_letter.mail_from))
    with engine.connect() as conn:
        found = conn.execute(sa.select(bounces.c.kind, bounces.c.how, bounces.c.status)).all()
    assert sorted(found) == [("soft", "dsn", "4.2.2"), ("soft", "heuristic", "5.0.0")]
    assert state_of(engine, soft.signature_id) == "sent"  # recorded, nothing changed
    assert state_of(engine, heuristic.signature_id) == "sent"
    assert count(engine, "SELECT count(*) FROM bounced_addresses") == 0

    after = resolved_event(target=MP2)  # both MPs still get letters
    again = resolved_event()
    stage_letters(engine, [after, again])
    wait_until(lambda: state_of(engine, after.signature_id, "copy") == "sent", 15)
    wait_until(lambda: state_of(engine, again.signature_id, "copy") == "sent", 15)


def test_a_supporters_bounced_address_gets_no_further_copy_or_reminder(
    system, mail, engine, receiver
) -> None:
    system.start("relay")
    system.services["mailer"].start({"DEARMP_REMINDER_SWEEP_SECONDS": "0.5"})
    email = f"gone-{uuid.uuid4().hex[:8]}@example.org"
    first = resolved_event(email=email)
    stage_letters(engine, [first])
    mail.handler.wait_for(2, timeout=30)
    (copy,) = caught_for(mail, first.signature_id, "copy")
    bounced = dsn(copy.mail_from, copy.message, status="5.1.2", final_recipient=email)
    deliver_bounce(receiver, copy.mail_from, bounced)
    wait_until(lambda: state_of(engine, first.signature_id, "copy") == "bounced", 10)
    assert state_of(engine, first.signature_id) == "sent"  # the letter to the MP is untouched

    second = resolved_event(email=email, comment="Once more.")
    stage_letters(engine, [second])
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'mailer'") == 2, 15
    )
    assert len(caught_for(mail, second.signature_id)) == 1  # the MP still gets the letter
    assert not caught_for(mail, second.signature_id, "copy")
    assert state_of(engine, second.signature_id, "copy") is None

    # A reminder due for that address: nothing sent, and the reminder is settled.
    now = datetime.now(UTC)
    signature_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            pending_confirmations.insert().values(
                signature_id=signature_id,
                campaign=CAMPAIGN,
                email=email,
                first_name="Jo",
                last_name="Bloggs",
                received_at=now - timedelta(days=2),
                due_at=now - timedelta(days=1),
            )
        )
    reminded = "SELECT count(*) FROM pending_confirmations WHERE reminded_at IS NOT NULL"
    wait_until(lambda: count(engine, reminded) == 1, 15, message="the reminder sweep")
    assert not caught_for(mail, signature_id, "reminder")


def test_a_forged_or_unknown_return_path_changes_nothing(engine, receiver) -> None:
    letter_id = make_sent_letter(engine)
    with engine.connect() as conn:
        message_id = conn.execute(sa.select(letters.c.message_id)).scalar_one()
    genuine = return_path(receiver, letter_id)
    forged = genuine.replace(genuine.split("-")[-1].split("@")[0], "0123456789abcdef")
    other = return_path(
        receiver.model_copy(update={"secret_key": "another-key-0123456789"}), letter_id
    )
    original = Message()
    original["Message-ID"] = message_id  # known to the forger: not believed
    for to in (forged, other, "bounces@dearmp.invalid", f"bounces+{letter_id}@dearmp.invalid"):
        deliver_bounce(receiver, to, dsn(to, original))
    with engine.connect() as conn:
        assert conn.execute(sa.select(letters.c.state)).scalar() == "sent"
        assert conn.execute(sa.select(sa.func.count()).select_from(bounces)).scalar() == 0
        assert count(engine, "SELECT count(*) FROM bounced_addresses") == 0


def test_dearmp_serve_bounces_takes_mail_and_stops_cleanly(service_env, settings) -> None:
    port = free_port()
    env = {**service_env, "DEARMP_BOUNCES_PORT": str(port), "DEARMP_METRICS_PORT": "0"}
    process = ServiceProcess("bounces", env, tag="serve-bounces").start()
    try:
        process.wait_started(20)
        to = "bounces+1-0123456789abcdef@dearmp.invalid"  # not ours: accepted, dropped
        deliver_bounce(settings.model_copy(update={"bounces_port": port}), to, qmail_bounce(to))
        wait_until(lambda: "bounce dropped" in process.output(), 10)
        assert "other.member" not in process.output()  # no personal data in the log
    finally:
        code = process.terminate(20)
    assert code == 0, process.output()[-2000:]
    assert "bounces stopped" in process.output()
