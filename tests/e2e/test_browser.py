"""A supporter's journey in a real browser (headless Chromium): sign with a mistake, see the GOV.UK
error summary, correct it, confirm from the email, and watch the thank-you page name the MP.

Screenshots of each step are saved in tests/artifacts/ (01-campaign.png … 05-thanks.png).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa

from tests.browser import by, chromium, fill, focused_id, press, screenshot, text_of, wait_for
from tests.support import confirm_url_in, wait_until

CAMPAIGN = "guardians-for-children"
SUBMIT = "form button[type=submit]"
TYPED = {
    "first_name": "Siân",
    "last_name": "Ó Briain",
    "address_line1": "1 Test Street",
    "town": "Aldershot",
    "postcode": "NOT A POSTCODE",
    "comment": "My niece was one of these children.",
}


def _value(driver: Any, name: str) -> str:
    return str(driver.find_element(by().ID, name).get_attribute("value"))


def _status(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(s) for s in conn.execute(sa.text("SELECT status FROM signatures")).scalars()]


def _assert_error_page(driver: Any, expected: dict[str, str]) -> None:
    """The GOV.UK error pattern: "Error:" title, summary first, a link per field, inline messages."""
    assert driver.title.startswith("Error:"), driver.title
    summary = wait_for(driver, ".govuk-error-summary")
    assert summary.get_attribute("role") == "alert"
    assert "There is a problem" in summary.text
    # It has the focus as soon as the page loads (autofocus: with or without scripts), so a
    # keyboard or screen reader user starts from it.
    wait_until(
        lambda: focused_id(driver) == "error-summary", 5, 0.05, "the error summary to have focus"
    )
    # It is the first thing in the page's content, above the campaign heading.
    content = driver.find_element(by().CSS_SELECTOR, "main .govuk-grid-column-two-thirds")
    first = content.find_element(by().XPATH, "./*[1]")
    assert first.get_attribute("id") == "error-summary", first.get_attribute("outerHTML")[:200]
    heading = driver.find_element(by().TAG_NAME, "h1")
    assert summary.location["y"] < heading.location["y"]
    links = summary.find_elements(by().CSS_SELECTOR, ".govuk-error-summary__list a")
    assert [link.get_dom_attribute("href") for link in links] == [f"#{name}" for name in expected]
    for link, (name, message) in zip(links, expected.items(), strict=True):
        assert message in link.text, (name, link.text)
        inline = driver.find_element(by().ID, f"{name}-error")
        assert message in inline.text and inline.is_displayed()
        # The message is next to its field (inside a checkbox's fieldset) and read out with it.
        field = driver.find_element(by().ID, name)
        assert f"{name}-error" in _described_by(field)
        group = field.find_element(
            by().XPATH, "./ancestor::div[contains(@class,'govuk-form-group')]"
        )
        assert "govuk-form-group--error" in (group.get_attribute("class") or "")
        assert (
            inline.find_element(by().XPATH, "./ancestor::div[contains(@class,'govuk-form-group')]")
            == group
        )
        fieldset = field.find_elements(by().XPATH, "./ancestor::fieldset")
        if fieldset:
            assert inline.find_element(by().XPATH, "./ancestor::fieldset") == fieldset[0]
    _assert_every_field_is_labelled(driver)


def _described_by(field: Any) -> list[str]:
    """The ids that describe a field: its own aria-describedby, and its fieldset's (a GOV.UK
    checkbox's hint and error message describe the group)."""
    ids = (field.get_attribute("aria-describedby") or "").split()
    for fieldset in field.find_elements(by().XPATH, "./ancestor::fieldset"):
        ids += (fieldset.get_attribute("aria-describedby") or "").split()
    return ids


def test_supporter_signs_in_a_browser_and_the_letter_goes(system, mail, engine) -> None:
    from selenium.common.exceptions import WebDriverException

    system.start()
    email = f"browser-{uuid.uuid4().hex[:8]}@example.org"
    with chromium() as driver:
        # The campaign page, with its form.
        driver.get(f"{system.base_url}/c/{CAMPAIGN}")
        wait_for(driver, "form[action='/c/guardians-for-children/sign']")
        assert driver.find_element(by().TAG_NAME, "html").get_attribute("lang") == "en"
        assert driver.title.endswith("– Dear MP") and not driver.title.startswith("Error:")
        assert driver.find_elements(by().CSS_SELECTOR, ".govuk-error-summary") == []
        _assert_every_field_is_labelled(driver)
        screenshot(driver, "01-campaign")

        # A mistake: a postcode that is not one, and the consent box left unticked.
        fill(driver, {**TYPED, "email": email})
        assert not driver.find_element(by().ID, "consent").is_selected()
        press(driver, SUBMIT)
        _assert_error_page(
            driver,
            {
                "postcode": "Enter a real postcode, like SW1A 1AA",
                "consent": "Tick the box to agree to the terms and privacy notice",
            },
        )
        # What the supporter typed is still there (the email and their own words included).
        for name, value in {**TYPED, "email": email}.items():
            assert _value(driver, name) == value, name
        assert not driver.find_element(by().ID, "consent").is_selected()
        # The summary's links lead to the fields.
        driver.find_element(by().CSS_SELECTOR, ".govuk-error-summary a[href='#postcode']").click()
        assert driver.current_url.endswith("#postcode")
        screenshot(driver, "02-errors")
        screenshot(driver, "02-errors-mobile", width=375)
        assert _status(engine) == []

        # Corrected: the supporter lands on "Check your email".
        fill(driver, {"postcode": "gu11 1aa"})
        driver.find_element(by().ID, "consent").click()
        assert driver.find_element(by().ID, "consent").is_selected()
        press(driver, SUBMIT)
        assert driver.current_url.endswith(f"/c/{CAMPAIGN}/check-email"), driver.current_url
        assert text_of(driver, "h1") == "Check your email"
        assert not driver.title.startswith("Error:")
        screenshot(driver, "03-check-email")

        # The confirmation email's link opens a page with a button; opening it confirms nothing.
        confirmation = mail.handler.wait_for(1)[0].message
        assert confirmation["X-DearMP-Intended-Recipient"] == email
        link = confirm_url_in(confirmation.get_body(("plain",)).get_content())
        assert link.startswith(system.base_url), link
        driver.get(link)
        button = wait_for(driver, SUBMIT)
        assert button.text == "Confirm my signature"
        assert text_of(driver, "h1") == "Confirm your signature"
        screenshot(driver, "04-confirm")
        assert _status(engine) == ["pending"]

        # Pressing the button confirms; the thank-you page follows the letter's journey.
        press(driver, SUBMIT)
        assert "/thanks/" in driver.current_url, driver.current_url
        assert text_of(driver, ".govuk-panel h1") == "Your signature is confirmed"
        assert _status(engine) != ["pending"]

        def names_the_mp() -> bool:
            try:  # thanks.js also looks again by itself while the MP is being found
                text = text_of(driver, "[role=status]")
            except WebDriverException:
                return False
            if "Alex Demo" in text and "Aldershot" in text:
                return True
            time.sleep(0.5)
            driver.refresh()
            return False

        wait_until(names_the_mp, 30, 0.1, "the thank-you page to name the MP")
        # On its way, or already sent (one stage at a time, issue 26).
        said = text_of(driver, "[role=status]")
        assert (
            "Your letter is going to Alex Demo, MP for Aldershot." in said
            or "your letter went to Alex Demo, MP for Aldershot." in said
        ), said
        screenshot(driver, "05-thanks")

    # The letter reached the (sandboxed) SMTP server, addressed to the MP.
    caught = mail.handler.wait_for(2, timeout=30)
    letter = caught[1].message
    assert letter["X-DearMP-Intended-Recipient"] == "alex.demo.mp@demo-parliament.invalid"
    assert caught[1].rcpt_tos == ["sandbox@example.org"]
    body = letter.get_body(("plain",)).get_content()
    assert body.startswith("Dear Alex Demo,")
    assert "My niece was one of these children." in body
    assert "Siân Ó Briain" in str(letter["From"])


def test_the_form_works_without_javascript(system, mail, engine) -> None:
    system.start("intake")
    with chromium(javascript=False) as driver:
        # Scripts really are off: this page would retitle itself if they ran.
        driver.get("data:text/html,<title>off</title><script>document.title='on'</script>")
        assert driver.title == "off"

        driver.get(f"{system.base_url}/c/{CAMPAIGN}")
        wait_for(driver, "form[action='/c/guardians-for-children/sign']")
        # Nothing filled in: every required field is reported, in page order.
        press(driver, SUBMIT)
        _assert_error_page(
            driver,
            {
                "first_name": "Enter your first name",
                "last_name": "Enter your last name",
                "email": "Enter your email address",
                "address_line1": "Enter your first address line",
                "town": "Enter your town or city",
                "postcode": "Enter your postcode",
                "consent": "Tick the box to agree to the terms and privacy notice",
            },
        )
        screenshot(driver, "06-nojs-errors")

        # Corrected, it is accepted (the CSRF token and cookie need no script either).
        fill(driver, {**TYPED, "postcode": "GU11 1AA", "email": "nojs@example.org"})
        driver.find_element(by().ID, "consent").click()
        press(driver, SUBMIT)
        assert text_of(driver, "h1") == "Check your email"
        assert _status(engine) == ["pending"]


def _assert_every_field_is_labelled(driver: Any) -> None:
    fields = driver.find_elements(
        by().CSS_SELECTOR, "form input:not([type=hidden]), form textarea, form select"
    )
    assert fields
    for field in fields:
        field_id = field.get_attribute("id")
        assert field_id, field.get_attribute("outerHTML")
        labels = driver.find_elements(by().CSS_SELECTOR, f"label[for='{field_id}']")
        assert len(labels) == 1, field_id
        # The honeypot's label is off-screen on purpose; every other label is visible text.
        label = labels[0].text if field_id != "website" else labels[0].get_attribute("textContent")
        assert label.strip(), field_id
        # Its hint, if it has one, is read out with it.
        if driver.find_elements(by().ID, f"{field_id}-hint"):
            assert f"{field_id}-hint" in _described_by(field), field_id
        # A checkbox is a question: a fieldset whose legend asks it (GOV.UK checkboxes).
        if field.get_attribute("type") == "checkbox":
            legend = field.find_element(by().XPATH, "./ancestor::fieldset/legend")
            assert legend.text.strip(), field_id
    hints = driver.find_elements(by().CSS_SELECTOR, "form .govuk-hint")
    assert hints and all(hint.get_attribute("id").endswith("-hint") for hint in hints)
    ids = driver.execute_cdp_cmd(
        "Runtime.evaluate",
        {
            "expression": "[...document.querySelectorAll('[id]')].map(e => e.id)",
            "returnByValue": True,
        },
    )["result"]["value"]
    assert len(ids) == len(set(ids)), "duplicate ids on the page"
