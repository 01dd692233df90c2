"""Issue 26, Must show 2: a digest for a campaign whose title holds ``:`` and ``,``, with three
constituents, as the MP's office receives it from the real mailer (its handler and its digest
sweep, in this process) through Postgres and the SMTP catcher: From parses as one address; the
campaign's letter, each constituent's contact and the disclosure line are in both parts; the
HTML part is rendered in headless Chromium and saved as tests/artifacts/digest-html.png."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.campaigns import get_campaign, save_campaign
from shared.messages import Envelope
from tests.browser import chromium, screenshot
from tests.integration.mailer_helpers import CAMPAIGN, MP, count, resolved_event
from tests.support import wait_until

TITLE = "Children first: guardians, now and always, for every trafficked and unaccompanied child"
DISCLOSURE = "I am sending this through the Children first campaign at https://example.org/cf."
LETTER_WORDS = "An independent guardian, with"


@pytest.mark.timeout(120)
def test_a_digest_with_a_colon_and_a_comma_in_its_title_reads_right(settings, engine, mail) -> None:
    from services.mailer import handlers as mailer
    from services.mailer.digests import send_due_digests

    settings = settings.model_copy(update={"operator_contact": "help@dearmp.example"})
    with engine.begin() as conn:
        campaign = get_campaign(conn, CAMPAIGN)
        assert campaign is not None
        update = {"delivery": "digest", "title": TITLE, "disclosure": DISCLOSURE}
        save_campaign(conn, campaign.model_copy(update=update))
    handle = mailer.bootstrap(settings, engine)
    deps = mailer.make_deps(settings, engine)
    events = [
        resolved_event(first_name="Aisha", last_name="Khan", comment="My brother was one."),
        resolved_event(first_name="Siân", last_name="Ó Briain", comment=""),
        resolved_event(first_name="Tom", last_name="O'Neill", comment="Please <act> & now."),
    ]
    for event in events:
        handle(Envelope.wrap(event, correlation_id=event.signature_id))
    assert count(engine, "SELECT count(*) FROM letters WHERE state = 'queued'") == 3

    assert send_due_digests(deps, datetime.now(UTC) + timedelta(days=1)) == 1
    wait_until(
        lambda: any(str(c.message["Message-ID"]).startswith("<digest.") for c in mail.messages),
        30,
        message="the digest at the catcher",
    )
    [digest] = [
        c.message for c in mail.messages if str(c.message["Message-ID"]).startswith("<digest.")
    ]

    # From: one address, the title whole (the email package's parser, as a mail client reads it).
    [sender] = digest["From"].addresses
    assert not digest["From"].defects
    assert " ".join(sender.display_name.split()) == f"{TITLE} via Dear MP"
    assert sender.addr_spec == f"letters@{settings.mail_domain}"
    assert [a.addr_spec for a in digest["Reply-To"].addresses] == ["help@dearmp.example"]
    assert digest["X-DearMP-Intended-Recipient"] == MP.email

    text = digest.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = digest.get_body(("html",)).get_content()
    for part in (text, html):
        assert part.count(LETTER_WORDS) == 1  # the campaign's letter, once
        assert DISCLOSURE in part
        assert "My brother was one." in part
        assert "each letter on its own" in part  # how to ask for single letters
        for event in events:
            s = event.supporter
            assert s.email in part and s.address_lines[0] in part and s.postcode in part
    for event in events:
        assert f"mailto:{event.supporter.email}" in text
        assert f'href="mailto:{event.supporter.email}"' in html
        assert event.supporter.full_name in text
    assert "Please &lt;act&gt; &amp; now." in html and "<act>" not in html
    assert "Siân Ó Briain" in html and "Tom O&#39;Neill" in html
    with engine.connect() as conn:
        states = conn.execute(
            sa.text("SELECT purpose, state FROM letters WHERE purpose IN ('letter', 'digest')")
        ).all()
    assert sorted(states) == [("digest", "sent")] + [("letter", "sent")] * 3

    with tempfile.TemporaryDirectory() as folder, chromium(javascript=False) as driver:
        page = Path(folder) / "digest.html"
        page.write_text(html, encoding="utf-8")
        driver.get(page.as_uri())
        assert "The campaign's letter" in driver.find_element("tag name", "body").text
        saved = screenshot(driver, "digest-html", width=900)
    assert saved.stat().st_size > 10_000


def test_the_letter_footer_names_the_constituent_the_organisation_and_the_operator(
    settings, engine, mail
) -> None:
    from services.mailer import handlers as mailer
    from shared.organisations import checked, save_organisation

    settings = settings.model_copy(update={"operator_contact": "help@dearmp.example"})
    with engine.begin() as conn:
        org = checked(slug="children-first", name="Children First UK", privacy_url="/privacy")
        save_organisation(conn, org)
        conn.execute(
            sa.text("UPDATE campaigns SET organisation = 'children-first' WHERE slug = :c"),
            {"c": CAMPAIGN},
        )
    handle = mailer.bootstrap(settings, engine)
    event = resolved_event(first_name="Aisha", last_name="Khan", comment="My brother was one.")
    handle(Envelope.wrap(event, correlation_id=event.signature_id))
    wait_until(
        lambda: any(str(c.message["Message-ID"]).startswith("<letter.") for c in mail.messages),
        30,
        message="the letter at the catcher",
    )
    [letter] = [
        c.message for c in mail.messages if str(c.message["Message-ID"]).startswith("<letter.")
    ]
    text = letter.get_body(("plain",)).get_content().replace("\r\n", "\n")
    body, footer = text.split("\n-- \n")
    assert "My brother was one." in body
    assert "on behalf of Aisha Khan" in footer and "run by Children First UK" in footer
    assert f"write to {event.supporter.email}" in footer and "help@dearmp.example" in footer
