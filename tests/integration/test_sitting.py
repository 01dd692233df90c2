"""Issue 19: a letter goes to whoever sits when it is sent, never to someone who no longer does.
The MP data changes after the resolver named the member, before the mailer sends the letter."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from shared.reference import mps
from tests.integration.mailer_helpers import count, resolved_event, stage_letters
from tests.support import letters_by_purpose

ALDERSHOT = "E14001063"  # resolved_event's constituency


def set_seat(engine, **values: object) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(
            mps.update()
            .where(mps.c.constituency_code == ALDERSHOT)
            .values(updated_at=datetime.now(UTC), **values)
        )


def test_a_new_member_gets_the_letter_and_a_vacant_seat_holds_it(system, mail, engine) -> None:
    event = resolved_event()  # to "Real Member", found now
    stage_letters(engine, [event])
    time.sleep(0.05)
    set_seat(engine, member_id=None, name=None, email=None)  # a by-election is called
    system.start("relay", "mailer")
    time.sleep(4)  # retried meanwhile (200-800 ms delays): nothing may go
    assert "letter" not in letters_by_purpose(mail.messages)
    assert count(engine, "SELECT count(*) FROM letters WHERE purpose = 'letter'") == 0

    set_seat(engine, member_id=4242, name="New Member", email="new.member.mp@parliament.uk")
    letter, copy = mail.handler.wait_for(2, timeout=60)[:2]
    assert letter.message["X-DearMP-Intended-Recipient"] == "new.member.mp@parliament.uk"
    assert "Dear New Member" in letter.message.get_body(("plain",)).get_content()
    # (Folded by the email package onto its second line, it parses with a leading space.)
    assert copy.message["Subject"].strip().startswith("Your letter to New Member")
    time.sleep(2)
    assert len(letters_by_purpose(mail.messages)["letter"]) == 1


def test_data_older_than_the_letters_member_does_not_overrule_them(system, mail, engine) -> None:
    set_seat(engine, name="Old Data", email="old.data.mp@parliament.uk")
    time.sleep(0.05)
    stage_letters(engine, [resolved_event()])  # found after that row was written: it stands
    system.start("relay", "mailer")
    letter = mail.handler.wait_for(1, timeout=60)[0]
    assert letter.message["X-DearMP-Intended-Recipient"] == "real.member.mp@parliament.uk"
