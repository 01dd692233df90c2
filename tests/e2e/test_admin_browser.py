"""The staff pages in a real browser (headless Chromium): /admin refused without login, sign in,
a campaign's charts (saved as tests/artifacts/admin-chart.png), then compose, preview and publish
an update, and see it as "Update #1" on the public campaign page."""

from __future__ import annotations

from typing import Any

from tests.browser import ARTIFACTS, chromium, page_replaced, screenshot
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    add_help_request,
    chart_signatures,
    make_staff,
)
from tests.support import wait_until


def _by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def _find(driver: Any, css: str, timeout: float = 15) -> Any:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((_by().CSS_SELECTOR, css))
    )


def _is_stale(element: Any) -> bool:
    return page_replaced(element)


def _press(driver: Any, css: str) -> None:
    """Press a button and wait for the next page to load."""
    old = driver.find_element(_by().TAG_NAME, "html")
    driver.find_element(_by().CSS_SELECTOR, css).click()
    wait_until(lambda: _is_stale(old), 20, 0.05, "the next page to load")
    _find(driver, "body")


def _type(driver: Any, field_id: str, text: str) -> None:
    field = driver.find_element(_by().ID, field_id)
    field.clear()
    field.send_keys(text)


def test_staff_sign_in_see_the_chart_and_publish_an_update(system, engine) -> None:
    make_staff(engine)
    signatures = chart_signatures(engine)
    add_help_request(engine)
    system.start("intake")
    by = _by()
    with chromium(javascript=False) as driver:
        # Not signed in: /admin sends the browser to the login page, and shows nothing else.
        driver.get(f"{system.base_url}/admin")
        _find(driver, "form[action='/admin/login']")
        assert driver.current_url == f"{system.base_url}/admin/login?next=/admin"
        assert driver.find_elements(by.CSS_SELECTOR, "table") == []
        driver.get(f"{system.base_url}/admin/c/{CAMPAIGN}")
        assert "/admin/login?next=" in driver.current_url
        screenshot(driver, "admin-01-login")

        # A wrong password: the GOV.UK error summary, still on the login page.
        _type(driver, "email", STAFF_EMAIL)
        _type(driver, "password", "not the password")
        _press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.title.startswith("Error:")
        assert "is not right" in driver.find_element(by.CSS_SELECTOR, ".govuk-error-summary").text

        # Signing in returns to the page that was asked for.
        _type(driver, "password", STAFF_PASSWORD)
        _press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.current_url == f"{system.base_url}/admin/c/{CAMPAIGN}", driver.current_url
        driver.get(f"{system.base_url}/admin")
        assert driver.find_element(by.TAG_NAME, "h1").text == "Campaigns"
        _press(driver, f"a[href='/admin/c/{CAMPAIGN}']")
        assert driver.current_url.endswith(f"/admin/c/{CAMPAIGN}")

        # The charts, drawn without JavaScript, described for screen readers.
        chart = _find(driver, "svg[aria-labelledby^='signatures-chart']")
        assert chart.size["width"] > 600 and chart.size["height"] > 150, chart.size
        bars = chart.find_elements(by.CSS_SELECTOR, "rect title")
        assert len(bars) == 96  # 48 hours × (received, confirmed)
        desc = driver.find_element(by.ID, "signatures-chart-desc").get_attribute("textContent")
        assert f"{signatures:,} received" in desc
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert chart.screenshot(str(ARTIFACTS / "admin-chart.png"))
        letters_chart = driver.find_element(
            by.CSS_SELECTOR, "svg[aria-labelledby^='letters-chart']"
        )
        assert letters_chart.screenshot(str(ARTIFACTS / "admin-letters-chart.png"))
        screenshot(driver, "admin-02-campaign")

        # Compose, preview (the markdown rendered as on the campaign page), publish.
        _type(driver, "title", "We met the minister")
        _type(
            driver, "body", "It went **well**.\n\n- 3,000 letters delivered\n- a meeting next month"
        )
        _press(driver, "button[value=preview]")
        preview = _find(driver, "#preview")
        assert "We met the minister" in preview.text
        assert preview.find_element(by.CSS_SELECTOR, "article strong").text == "well"
        assert len(preview.find_elements(by.CSS_SELECTOR, "li")) == 2
        # The draft is still in the form.
        assert driver.find_element(by.ID, "title").get_attribute("value") == "We met the minister"
        screenshot(driver, "admin-03-preview")
        _press(driver, "button[value=publish]")
        assert "published=1" in driver.current_url
        assert (
            "Update #1 is published." in driver.find_element(by.CSS_SELECTOR, "[role=status]").text
        )

        # The public campaign page shows it.
        driver.get(f"{system.base_url}/c/{CAMPAIGN}")
        update = _find(driver, ".dearmp-update")
        assert update.find_element(by.CSS_SELECTOR, ".dearmp-update__meta").text.startswith(
            "Update #1"
        )
        assert "We met the minister" in update.text
        screenshot(driver, "admin-04-public-update")

        # The pages for what went wrong: failed letters (addresses masked) and dead letters.
        driver.get(f"{system.base_url}/admin/letters/failed")
        failed = driver.find_element(by.TAG_NAME, "main").text
        assert "550 5.1.1 mailbox unknown" in failed and "a***@demo-parliament.invalid" in failed
        screenshot(driver, "admin-05-failed-letters")
        driver.get(f"{system.base_url}/admin/dlq")
        assert driver.find_element(by.TAG_NAME, "h1").text == "Dead letters"
        screenshot(driver, "admin-06-dead-letters")

        # Signing out ends the session: /admin is refused again.
        driver.get(f"{system.base_url}/admin")
        _press(driver, "form[action='/admin/logout'] button")
        assert driver.current_url == f"{system.base_url}/admin/login"
        driver.get(f"{system.base_url}/admin/dlq")
        assert "/admin/login?next=/admin/dlq" in driver.current_url
