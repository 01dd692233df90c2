"""Issue 18: a campaign's supporters get emails in its organisation's name ("ECPAT UK via Dear
MP"), while the letter stays the supporter's ("<supporter> via Dear MP")."""

from __future__ import annotations

from shared.organisations import checked, save_organisation
from shared.reference import campaigns
from tests.integration.mailer_helpers import CAMPAIGN, count, resolved_event, stage_letters
from tests.support import wait_until


def test_the_copy_carries_the_organisations_name_and_the_letter_the_supporters(
    system, mail, engine
) -> None:
    with engine.begin() as conn:
        save_organisation(
            conn,
            checked(slug="ecpat-uk", name="ECPAT UK", privacy_url="https://www.ecpat.org.uk/p"),
        )
        conn.execute(
            campaigns.update().where(campaigns.c.slug == CAMPAIGN).values(organisation="ecpat-uk")
        )
    system.start("relay", "mailer")
    stage_letters(engine, [resolved_event(first_name="Siân", last_name="Ó Briain")])

    letter, copy = mail.handler.wait_for(2, timeout=60)[:2]
    assert str(letter.message["Message-ID"]).startswith("<letter.")
    assert letter.message["From"].addresses[0].display_name == "Siân Ó Briain via Dear MP"
    sender = copy.message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (
        "ECPAT UK via Dear MP",
        "hello@dearmp.invalid",
    )
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE state = 'sent'") == 2,
        30,
        message="the letter and the copy recorded as sent",
    )
