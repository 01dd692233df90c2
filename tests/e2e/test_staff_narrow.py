"""Every staff page fits a 360 px phone screen (issue 26): nothing makes the page wider than
the screen, with the long things real campaigns have (a 60-character tag on the link, a long
address in a help request, a long MP name, a long failure reason); wide tables scroll inside
their own labelled, focusable region instead. Headless Chromium, real Postgres; the page's
``document.documentElement.scrollWidth`` against ``window.innerWidth`` at 360 px.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from services.intake.admin.exports import CONSTITUENCIES
from services.intake.models import signatures
from tests.browser import HEIGHT, by, chromium, fill, press, screenshot, wait_for
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    add_help_request,
    chart_signatures,
    make_signature_row,
    make_staff,
)

WIDTH = 360
LONG_WORD = "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch" * 2
LONG_EMAIL = "a.very.long.address.of.somebody.who.signed@a-very-long-domain-name.example.org"


def long_things(engine: sa.Engine) -> None:
    """What makes pages wide in real use: long tags, names, addresses, reasons, titles."""
    now = datetime.now(UTC)
    rows = []
    for i in range(3):
        row = make_signature_row(
            created_at=now,
            confirmed_at=now,
            constituency=("E14001064", "Caithness, Sutherland and Easter Ross Extended"),
            email=f"{i}.{LONG_EMAIL}",
        )
        row.update(
            source="s" * 60,
            utm_source="u" * 60,
            utm_medium="m" * 60,
            utm_campaign="c" * 60,
            target_name="The Right Honourable Sir Bartholomew Featherstonehaugh-Cholmondeley",
        )
        rows.append(row)
    with engine.begin() as conn:
        conn.execute(signatures.insert(), rows)
        conn.execute(
            sa.text("UPDATE letters SET recipient = :r, error = :e WHERE state = 'failed'"),
            {"r": LONG_EMAIL, "e": f"550 5.1.1 <{LONG_EMAIL}>: {LONG_WORD}"},
        )
        conn.execute(
            sa.text(
                "INSERT INTO staff_exports (campaign, kind, staff_email, created_at, rows) "
                "VALUES (:c, :k, :e, now(), 3)"
            ),
            {"c": CAMPAIGN, "k": CONSTITUENCIES, "e": LONG_EMAIL},
        )
    add_help_request(engine, name=LONG_WORD[:40], email=LONG_EMAIL, message=LONG_WORD)


def narrow(driver) -> None:  # type: ignore[no-untyped-def]
    """A 360 px screen. Not emulated as a phone: a phone's browser zooms out to show a page that
    is too wide, which would widen ``window.innerWidth`` with it and hide the overflow."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )


def too_wide(driver) -> str:  # type: ignore[no-untyped-def]
    """'' when the page fits the screen; else how wide it is, and its widest elements."""
    return str(
        driver.execute_script(
            """
            const w = window.innerWidth, d = document.documentElement.scrollWidth;
            if (d <= w) return '';
            const wide = [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > w + 1)
              .filter(e => !e.closest('[role=region]') || e.matches('[role=region]'))
              .slice(0, 6)
              .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                   + (e.className && e.className.baseVal === undefined ? '.' + e.className : '')
                   + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
            return `${d}px wide on a ${w}px screen: ${wide.join(', ')}`;
            """
        )
    )


def test_every_staff_page_fits_360_px(system, engine) -> None:
    make_staff(engine)
    chart_signatures(engine)
    long_things(engine)
    system.start("intake")
    base = system.base_url
    problems: list[str] = []
    with chromium() as driver:
        narrow(driver)
        driver.get(f"{base}/admin/login")
        wait_for(driver, "form[action='/admin/login']")
        assert driver.execute_script("return window.innerWidth") == WIDTH
        if found := too_wide(driver):
            problems.append(f"login: {found}")
        fill(driver, {"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.find_element(by().TAG_NAME, "h1").text == "Campaigns"
        pages = {
            "campaigns": "/admin",
            "campaign": f"/admin/c/{CAMPAIGN}",
            "campaign-sorted": f"/admin/c/{CAMPAIGN}?sort=mp&order=asc",
            "edit": f"/admin/c/{CAMPAIGN}/edit",
            "versions": f"/admin/c/{CAMPAIGN}/versions",
            "preview": f"/admin/c/{CAMPAIGN}/preview",
            "new-campaign": "/admin/campaigns/new",
            "failed-letters": "/admin/letters/failed",
            "failed-letters-campaign": f"/admin/letters/failed?campaign={CAMPAIGN}",
            "dead-letters": "/admin/dlq",
            "subject-access": "/admin/supporters",
            "accounts": "/admin/accounts",
            "webhooks": "/admin/webhooks",
            "not-found": f"/admin/c/no-such-{uuid.uuid4().hex[:6]}",
        }
        for name, path in pages.items():
            driver.get(f"{base}{path}")
            wait_for(driver, "main")
            if found := too_wide(driver):
                problems.append(f"{name}: {found}")
        # Subject access with a result.
        driver.get(f"{base}/admin/supporters")
        fill(driver, {"email": f"0.{LONG_EMAIL}"})
        press(driver, "form[action='/admin/supporters'] button[type=submit]")
        if found := too_wide(driver):
            problems.append(f"subject-access-result: {found}")
        driver.get(f"{base}/admin/c/{CAMPAIGN}")
        wait_for(driver, "main")
        screenshot(driver, "admin-campaign-360", width=WIDTH)
        # The wide tables scroll in a region a keyboard can reach, named by the table.
        regions = driver.find_elements(by().CSS_SELECTOR, "[role=region]")
        assert regions, "no scrollable region on the campaign page"
        for region in regions:
            assert region.get_attribute("tabindex") == "0"
            assert region.get_attribute("aria-labelledby") or region.get_attribute("aria-label")
    assert not problems, "\n".join(problems)
