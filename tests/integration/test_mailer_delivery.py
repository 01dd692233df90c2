"""The mailer process against a real SMTP catcher: sandbox, the copy, the reminder, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from services.mailer.models import letters, pending_confirmations
from services.mailer.retention import scrub_expired
from shared.messages import Envelope
from tests.integration.mailer_helpers import (
    MP,
    count,
    message_ids,
    resolved_event,
    stage_letters,
)
from tests.support import confirm, confirm_url_in, make_signature, post_signatures, wait_until


def test_a_letter_to_parliament_never_reaches_parliament_in_sandbox_mode(
    system, mail, engine
) -> None:
    system.start("relay", "mailer")
    events = [resolved_event(first_name="Zoë", last_name="王") for _ in range(3)]
    stage_letters(engine, events)

    caught = mail.handler.wait_for(6, timeout=60)  # a letter and a copy each
    assert len(caught) == 6
    for c in caught:
        assert c.rcpt_tos == ["sandbox@example.org"], c.rcpt_tos
        assert not any("parliament.uk" in r for r in c.rcpt_tos)
    letters_at_catcher = [c for c in caught if str(c.message["Message-ID"]).startswith("<letter.")]
    assert len(letters_at_catcher) == 3
    for c in letters_at_catcher:
        assert c.message["X-DearMP-Intended-Recipient"] == MP.email
        assert c.message["To"].addresses[0].addr_spec == MP.email  # the header, not the envelope
        assert c.message["From"].addresses[0].display_name == "Zoë 王 via Dear MP"
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 6,
        30,
        message="every letter and copy recorded as sent",
    )


def test_the_supporter_gets_a_copy_after_the_letter_exactly_once(system, mail, engine) -> None:
    system.start("relay", "mailer")
    event = resolved_event(first_name="Siân", last_name="Ó Briain", comment="Tom & Jerry <3")
    stage_letters(engine, [event])
    letter, copy = mail.handler.wait_for(2, timeout=60)[:2]
    assert str(letter.message["Message-ID"]).startswith("<letter.")
    assert str(copy.message["Message-ID"]) == f"<copy.{event.signature_id}@dearmp.invalid>"
    assert copy.message["X-DearMP-Intended-Recipient"] == event.supporter.email
    assert copy.message["Subject"].startswith("Your letter to Real Member: ")
    letter_text = letter.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    letter_text = letter_text.split("\n-- \n")[0]  # the copy holds the letter, not its footer
    copy_text = copy.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Tom & Jerry <3" in letter_text and letter_text in copy_text

    stage_letters(engine, [event])  # the same event again (a second resolver answer, say)
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'mailer'") == 2,
        30,
        message="the mailer to handle the repeat",
    )
    assert sorted(message_ids(mail.messages).values()) == [1, 1]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(letters.c.purpose, letters.c.sends)).all()
    assert sorted(rows) == [("copy", 1), ("letter", 1)]
    # Announced once: the letter reaching its target (intake shows it); the copy concerns nobody.
    with engine.connect() as conn:
        announced = conn.execute(
            sa.text("SELECT routing_key, body FROM outbox WHERE routing_key LIKE 'letter.%'")
        ).all()
    assert [key for key, _ in announced] == ["letter.sent"]
    assert Envelope.from_json(bytes(announced[0][1])).event().purpose == "letter"


def test_one_reminder_for_the_unconfirmed_none_for_the_confirmed(system, mail, engine) -> None:
    system.start("relay", "resolver", "updates", "intake")
    system.services["mailer"].start(
        {"DEARMP_REMINDER_AFTER_SECONDS": "3", "DEARMP_REMINDER_SWEEP_SECONDS": "0.3"}
    ).wait_started()
    forgetful, prompt = make_signature(first_name="Zoë"), make_signature()
    post_signatures(system.base_url, "guardians-for-children", [forgetful, prompt])
    confirmations = {
        c.message["X-DearMP-Intended-Recipient"]: c.message
        for c in mail.handler.wait_for(2, timeout=60)[:2]
    }
    with httpx.Client(timeout=30) as client:
        link = confirm_url_in(confirmations[prompt["email"]].get_body(("plain",)).get_content())
        assert confirm(client, link).status_code == 200

    def reminders() -> list:
        return [c for c in mail.messages if str(c.message["Message-ID"]).startswith("<reminder.")]

    wait_until(lambda: reminders(), 60, 0.2, "the reminder")
    reminder = reminders()[0].message
    assert reminder["X-DearMP-Intended-Recipient"] == forgetful["email"]
    assert reminder["Subject"].startswith("Reminder: Confirm your signature")
    text = reminder.get_body(("plain",)).get_content()
    first_link = confirm_url_in(
        confirmations[forgetful["email"]].get_body(("plain",)).get_content()
    )
    new_link = confirm_url_in(text)
    assert new_link != first_link  # a fresh token
    with httpx.Client(timeout=30) as client:
        thanks = confirm(client, new_link)
    assert thanks.status_code == 200 and "Your signature is confirmed" in thanks.text

    # Several more sweeps: still one reminder, and none for the supporter who confirmed.
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE purpose = 'copy'") == 2,
        60,
        message="both letters and copies to go out",
    )
    assert len(reminders()) == 1
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(pending_confirmations.c.confirmed, pending_confirmations.c.email)
        ).all()
    assert sorted(rows) == [(True, ""), (True, "")]  # confirmed: the personal fields are gone
    assert count(engine, "SELECT count(*) FROM letters WHERE purpose = 'reminder'") == 1


def test_retention_scrubs_what_is_older_than_the_period(engine, settings) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=settings.retention_days + 1), now - timedelta(days=1)
    sids = [uuid.uuid4() for _ in range(3)]
    with engine.begin() as conn:
        for sid, when, purpose, recipient in [
            (sids[0], old, "letter", "mp@parliament.uk"),
            (sids[0], old, "copy", "jo@example.org"),
            (sids[1], recent, "letter", "mp@parliament.uk"),
        ]:
            conn.execute(
                letters.insert().values(
                    signature_id=sid,
                    purpose=purpose,
                    campaign="c",
                    state="sent",
                    message_id=f"<{purpose}.{sid}@x>",
                    recipient=recipient,
                    subject="About Jo",
                    body="Dear MP, Jo Bloggs, 1 Road",
                    sends=1,
                    created_at=when,
                    sent_at=when,
                    supporter_key="k",
                    error="550 <jo@example.org> refused",
                )
            )
        for sid, when, confirmed in [(sids[0], old, False), (sids[2], recent, False)]:
            conn.execute(
                pending_confirmations.insert().values(
                    signature_id=sid,
                    campaign="c",
                    email="jo@example.org",
                    first_name="Jo",
                    last_name="B",
                    received_at=when,
                    due_at=when + timedelta(days=1),
                    confirmed=confirmed,
                )
            )
    assert scrub_expired(engine, settings) == {"letters": 2, "pending_confirmations": 1}
    assert scrub_expired(engine, settings) == {"letters": 0, "pending_confirmations": 0}
    with engine.connect() as conn:
        rows = {(r.signature_id, r.purpose): r for r in conn.execute(sa.select(letters)).all()}
        pending_left = conn.execute(sa.select(pending_confirmations.c.signature_id)).scalars()
        assert list(pending_left) == [sids[2]]
    scrubbed = rows[(sids[0], "copy")]
    assert scrubbed.body is None and scrubbed.subject == "" and scrubbed.recipient == ""
    assert scrubbed.supporter_key is None and scrubbed.scrubbed_at is not None
    assert scrubbed.error == "550 <[address removed]> refused"
    assert scrubbed.state == "sent" and scrubbed.message_id  # the record that it was sent stays
    assert rows[(sids[0], "letter")].recipient == "mp@parliament.uk"  # a public office
    kept = rows[(sids[1], "letter")]
    assert kept.body == "Dear MP, Jo Bloggs, 1 Road" and kept.scrubbed_at is None
