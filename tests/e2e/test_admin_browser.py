"""The staff pages in a real browser (headless Chromium): /admin refused without login, sign in,
a campaign's charts (saved as tests/artifacts/admin-chart.png), then compose, preview and publish
an update, and see it as "Update #1" on the public campaign page."""

from __future__ import annotations

from tests.browser import ARTIFACTS, by, chromium, fill, press, screenshot, wait_for
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    add_help_request,
    chart_signatures,
    make_staff,
)


def test_staff_sign_in_see_the_chart_and_publish_an_update(system, engine) -> None:
    make_staff(engine)
    signatures = chart_signatures(engine)
    add_help_request(engine)
    system.start("intake")
    with chromium(javascript=False) as driver:
        # Not signed in: /admin sends the browser to the login page, and shows nothing else.
        driver.get(f"{system.base_url}/admin")
        wait_for(driver, "form[action='/admin/login']")
        assert driver.current_url == f"{system.base_url}/admin/login?next=/admin"
        assert driver.find_elements(by().CSS_SELECTOR, "table") == []
        driver.get(f"{system.base_url}/admin/c/{CAMPAIGN}")
        assert "/admin/login?next=" in driver.current_url
        screenshot(driver, "admin-01-login")

        # A wrong password: the GOV.UK error summary, still on the login page.
        fill(driver, {"email": STAFF_EMAIL, "password": "not the password"})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.title.startswith("Error:")
        assert "is not right" in driver.find_element(by().CSS_SELECTOR, ".govuk-error-summary").text

        # Signing in returns to the page that was asked for.
        fill(driver, {"password": STAFF_PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.current_url == f"{system.base_url}/admin/c/{CAMPAIGN}", driver.current_url
        driver.get(f"{system.base_url}/admin")
        assert driver.find_element(by().TAG_NAME, "h1").text == "Campaigns"
        press(driver, f"a[href='/admin/c/{CAMPAIGN}']")
        assert driver.current_url.endswith(f"/admin/c/{CAMPAIGN}")

        # The charts, drawn without JavaScript, described for screen readers.
        chart = wait_for(driver, "svg[aria-labelledby^='signatures-chart']")
        assert chart.size["width"] > 600 and chart.size["height"] > 150, chart.size
        bars = chart.find_elements(by().CSS_SELECTOR, "rect title")
        assert len(bars) == 96  # 48 hours × (received, confirmed)
        desc = driver.find_element(by().ID, "signatures-chart-desc").get_attribute("textContent")
        assert f"{signatures:,} received" in desc
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert chart.screenshot(str(ARTIFACTS / "admin-chart.png"))
        letters_chart = driver.find_element(
            by().CSS_SELECTOR, "svg[aria-labelledby^='letters-chart']"
        )
        assert letters_chart.screenshot(str(ARTIFACTS / "admin-letters-chart.png"))
        screenshot(driver, "admin-02-campaign")

        # Compose, preview (the markdown rendered as on the campaign page), publish.
        fill(
            driver,
            {
                "title": "We met the minister",
                "body": "It went **well**.\n\n- 3,000 letters delivered\n- a meeting next month",
            },
        )
        press(driver, "button[value=preview]")
        preview = wait_for(driver, "#preview")
        assert "We met the minister" in preview.text
        assert preview.find_element(by().CSS_SELECTOR, "article strong").text == "well"
        assert len(preview.find_elements(by().CSS_SELECTOR, "li")) == 2
        # The draft is still in the form.
        assert driver.find_element(by().ID, "title").get_attribute("value") == "We met the minister"
        screenshot(driver, "admin-03-preview")
        press(driver, "button[value=publish]")
        assert "published=1" in driver.current_url
        assert (
            "Update #1 is published."
            in driver.find_element(by().CSS_SELECTOR, "[role=status]").text
        )

        # The public campaign page shows it.
        driver.get(f"{system.base_url}/c/{CAMPAIGN}")
        update = wait_for(driver, ".dearmp-update")
        assert update.find_element(by().CSS_SELECTOR, ".dearmp-update__meta").text.startswith(
            "Update #1"
        )
        assert "We met the minister" in update.text
        screenshot(driver, "admin-04-public-update")

        # The pages for what went wrong: failed letters (addresses masked) and dead letters.
        driver.get(f"{system.base_url}/admin/letters/failed")
        failed = driver.find_element(by().TAG_NAME, "main").text
        assert "550 5.1.1 mailbox unknown" in failed and "a***@demo-parliament.invalid" in failed
        screenshot(driver, "admin-05-failed-letters")
        driver.get(f"{system.base_url}/admin/dlq")
        assert driver.find_element(by().TAG_NAME, "h1").text == "Dead letters"
        screenshot(driver, "admin-06-dead-letters")

        # Signing out ends the session: /admin is refused again.
        driver.get(f"{system.base_url}/admin")
        press(driver, "form[action='/admin/logout'] button")
        assert driver.current_url == f"{system.base_url}/admin/login"
        driver.get(f"{system.base_url}/admin/dlq")
        assert "/admin/login?next=/admin/dlq" in driver.current_url
