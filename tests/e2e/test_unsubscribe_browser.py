"""A subscriber leaves and comes back in a real browser (headless Chromium): the address comes from
the List-Unsubscribe header of the update email the system sent them.

Screenshots: tests/artifacts/10-unsubscribe.png, 11-unsubscribed.png, 12-resubscribed.png.
"""

from __future__ import annotations

from typing import Any

from tests.browser import by, chromium, click_and_wait, screenshot, text_of
from tests.integration.updates_helpers import (
    add_subscribers,
    copies_of,
    is_subscribed,
    publish,
    unsubscribe_link,
    wait_for_job,
)
from tests.support import wait_until


def _press(driver: Any, label: str) -> None:
    """Press the button with this label and wait for the next page."""
    buttons = [b for b in driver.find_elements(by().CSS_SELECTOR, "form button") if b.text == label]
    assert len(buttons) == 1, [b.text for b in driver.find_elements(by().CSS_SELECTOR, "button")]
    click_and_wait(driver, buttons[0])


def test_a_subscriber_leaves_and_comes_back_from_the_email_link(system, mail, engine) -> None:
    system.env["DEARMP_FANOUT_SWEEP_SECONDS"] = "0.2"
    [me, other] = add_subscribers(engine, 2)
    system.start("relay", "updates", "intake")
    number = publish(engine, title="The minister replied")
    wait_for_job(engine, number)
    [copy] = [
        c
        for c in copies_of(mail.handler.wait_for(2), number)
        if c.message["X-DearMP-Intended-Recipient"] == me.email
    ]
    link = unsubscribe_link(copy.message)
    assert link.startswith(f"{system.base_url}/unsubscribe/")

    with chromium() as driver:
        driver.get(link)
        assert text_of(driver, "h1") == "Your email preferences"
        assert "Give every trafficked and unaccompanied child a guardian" in driver.page_source
        screenshot(driver, "10-unsubscribe")

        _press(driver, "Stop emails about this campaign")
        assert text_of(driver, "h1") == "You have unsubscribed"
        screenshot(driver, "11-unsubscribed")
        wait_until(lambda: not is_subscribed(engine, me), 60, 0.2, "the unsubscribe to apply")
        assert is_subscribed(engine, other)

        click_and_wait(driver, driver.find_element(by().PARTIAL_LINK_TEXT, "Changed your mind?"))
        assert text_of(driver, "h1") == "Your email preferences"
        _press(driver, "Keep getting updates about this campaign")
        assert text_of(driver, "h1") == "You will keep getting updates"
        screenshot(driver, "12-resubscribed")
        wait_until(lambda: is_subscribed(engine, me), 60, 0.2, "the resubscribe to apply")

    # The next update reaches them again.
    again = publish(engine, title="The debate is on Tuesday")
    done = wait_for_job(engine, again)
    assert (done.sent, done.skipped) == (2, 0)
