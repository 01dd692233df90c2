""" "Did your MP reply?" in a real browser (headless Chromium), the whole way: a letter goes
(relay → mailer), the question arrives a moment later (the delay made tiny), the supporter
follows "yes", presses the button and pastes the reply, agreeing that it may be shared; their
answer stops the reminder (reply.answered → mailer); the staff dashboard and, as the campaign
says so, the public page show the response rate.

Screenshots: tests/artifacts/reply-01-question.png, reply-02-pasted.png, reply-03-dashboard.png.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.intake.models import reply_answers, signatures
from tests.browser import by, chromium, fill, press, screenshot, text_of, wait_for
from tests.integration.admin_helpers import (
    STAFF_EMAIL,
    STAFF_PASSWORD,
    make_signature_row,
    make_staff,
)
from tests.integration.mailer_helpers import resolved_event, stage_letters
from tests.integration.reply_helpers import CAMPAIGN, asked, links_in, question_of
from tests.support import wait_until

REPLY = "Dear Jo,\n\nThank you for writing to me. I have raised this with the minister."


def _another_mp_said_no(engine: sa.Engine) -> None:
    """A constituent of another MP answered "no" earlier: two MPs, one has replied."""
    now = datetime.now(UTC)
    row = make_signature_row(created_at=now - timedelta(days=20), confirmed_at=now)
    row.update(target_name="Other Member", constituency_name="Bath")
    with engine.begin() as conn:
        conn.execute(signatures.insert().values(**row))
        conn.execute(
            reply_answers.insert().values(
                signature_id=row["id"], campaign=CAMPAIGN, answer="no", answered_at=now
            )
        )


def test_the_supporter_answers_yes_and_staff_see_the_rate(system, mail, engine) -> None:
    system.services["mailer"].env.update(  # the question a second after the letter
        DEARMP_REPLY_QUESTION_AFTER_SECONDS="1",
        DEARMP_REPLY_REMINDER_AFTER_SECONDS="3600",
        DEARMP_REPLY_SWEEP_SECONDS="0.3",
    )
    make_staff(engine)
    _another_mp_said_no(engine)
    event = resolved_event()
    now = datetime.now(UTC)
    row = make_signature_row(
        created_at=now, confirmed_at=now, email=event.supporter.email, status="confirmed"
    )
    row["id"] = event.signature_id
    with engine.begin() as conn:
        conn.execute(signatures.insert().values(**row))
        conn.execute(  # the campaign's option: the public page shows the rate
            sa.text(
                "UPDATE campaigns SET definition = jsonb_set(definition, '{show_reply_rate}', "
                "'true') WHERE slug = :slug"
            ),
            {"slug": CAMPAIGN},
        )
    system.start("relay", "mailer", "intake")
    stage_letters(engine, [event])

    wait_until(lambda: asked(mail.messages), 60, 0.2, "the reply question")
    [question] = asked(mail.messages)
    assert question.message["X-DearMP-Intended-Recipient"] == event.supporter.email
    links = links_in(question.message)

    with chromium(javascript=False) as driver:
        driver.get(links["yes"])
        assert text_of(driver, "h1") == "Has Real Member replied?"
        screenshot(driver, "reply-01-question")
        press(driver, "form[action$='/yes'] button")
        assert text_of(driver, "h1") == "Thank you for telling us"
        fill(driver, {"reply_text": REPLY})
        driver.find_element(by().ID, "share_reply").click()
        press(driver, "form[action$='/text'] button")
        assert "We have saved the reply." in text_of(driver, "[role=status]")
        screenshot(driver, "reply-02-pasted")

        # The answer reached the mailer: no reminder will go.
        wait_until(
            lambda: question_of(engine, event.signature_id).closed_at is not None,
            30,
            0.2,
            "reply.answered to close the question",
        )

        driver.get(f"{system.base_url}/admin/login")
        fill(driver, {"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        driver.get(f"{system.base_url}/admin/c/{CAMPAIGN}#replies")
        rate = wait_for(driver, "#reply-rate").text
        assert rate.startswith("50% of MPs have replied"), rate
        assert "1 of the 2 MPs" in rate
        table = text_of(driver, "#replies-table")
        assert "Real Member" in table and "Other Member" in table
        replies = text_of(driver, "#replies")
        assert "I have raised this with the minister." in replies and "May be shared" in replies
        screenshot(driver, "reply-03-dashboard")

        driver.get(f"{system.base_url}/c/{CAMPAIGN}")
        public = text_of(driver, "#reply-rate")
        assert "50% of MPs have replied to their constituents" in public
        assert "1 of the 2 MPs our supporters told us about" in public
        assert "raised this" not in driver.page_source  # the reply itself stays with staff
    assert asked(mail.messages, "reply_reminder") == []
