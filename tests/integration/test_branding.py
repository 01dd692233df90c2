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


def test_the_campaign_page_names_its_organisation(settings, engine) -> None:
    from fastapi.testclient import TestClient

    from services.intake.app import create_app

    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    page = client.get("/c/specialist-support-for-child-victims")  # one of Dear MP's own
    assert page.status_code == 200 and "A campaign by" not in page.text
    with engine.begin() as conn:
        save_organisation(
            conn,
            checked(
                slug="ecpat-uk",
                name="ECPAT UK <&>",
                website="https://www.ecpat.org.uk",
                colour="#b10e1e",
                privacy_url="https://www.ecpat.org.uk/p",
            ),
        )
        conn.execute(
            campaigns.update().where(campaigns.c.slug == CAMPAIGN).values(organisation="ecpat-uk")
        )
    page = client.get(f"/c/{CAMPAIGN}", headers={"Accept-Language": "cy"})
    assert page.status_code == 200
    assert (
        '<p class="dearmp-run-by" style="border-left-color: #b10e1e">Ymgyrch gan '
        '<a class="govuk-link" href="https://www.ecpat.org.uk">ECPAT UK &lt;&amp;&gt;</a></p>'
    ) in page.text
