"""The campaign dashboard's reports in a real browser (headless Chromium, no JavaScript): signatures
across many constituencies shown on the hex map and in the sortable table, sorted by a link; the
screenshots tests/artifacts/admin-dashboard.png (the whole page) and admin-map.png (the map)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from services.intake.admin.hexmap import geometry
from services.intake.models import signatures
from tests.browser import ARTIFACTS, by, chromium, fill, press, screenshot, wait_for
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    make_signature_row,
    make_staff,
)

SOURCES = ["newsletter", "facebook", "partner-site", None]


def spread_signatures(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """About 2,000 confirmed signatures over the last three weeks in 400 constituencies, more
    in some regions than others; a few pending. Returns the count per code."""
    rng = random.Random(18)
    hexes = list(geometry().hexes)
    chosen = rng.sample(hexes, 400)
    now = datetime.now(UTC)
    rows, counts = [], {}
    for n, place in enumerate(chosen):
        count = max(1, int(rng.paretovariate(1.2) * 2)) if n % 7 else 1 + rng.randrange(40)
        counts[place.code] = min(count, 80)
        for _ in range(counts[place.code]):
            at = now - timedelta(hours=rng.randrange(21 * 24))
            confirmed = rng.random() < 0.85
            row = make_signature_row(
                created_at=at,
                confirmed_at=min(at + timedelta(minutes=30), now),
                constituency=(place.code, place.name),
            )
            if not confirmed:
                row.update(confirmed_at=None, status="pending", constituency_code=None)
                row["constituency_name"] = None
            row["source"] = rng.choice(SOURCES)
            rows.append(row)
    with engine.begin() as conn:
        conn.execute(signatures.insert(), rows)
    return counts


def test_dashboard_map_and_table_in_a_browser(system, engine) -> None:
    make_staff(engine)
    spread_signatures(engine)
    system.start("intake")
    with chromium(javascript=False) as driver:
        driver.get(f"{system.base_url}/admin/login?next=/admin/c/{CAMPAIGN}")
        fill(driver, {"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.current_url.endswith(f"/admin/c/{CAMPAIGN}"), driver.current_url

        hexmap = wait_for(driver, "svg[aria-labelledby^='constituency-map']")
        assert hexmap.size["width"] > 300 and hexmap.size["height"] > 400, hexmap.size
        assert len(hexmap.find_elements(by().CSS_SELECTOR, "path[data-code]")) == 650
        seats = driver.find_elements(by().CSS_SELECTOR, "#seats tbody tr")
        assert 300 < len(seats) <= 400  # each constituency with a confirmed signature
        first = [int(r.find_elements(by().TAG_NAME, "td")[-1].text) for r in seats[:5]]
        assert first == sorted(first, reverse=True)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.set_window_size(1280, 1400)  # the whole map, legend included, in the viewport
        driver.execute_script("arguments[0].scrollIntoView()", hexmap)
        assert hexmap.screenshot(str(ARTIFACTS / "admin-map.png"))
        screenshot(driver, "admin-dashboard")

        # Sorting is a link: no JavaScript.
        press(driver, "#seats thead th:first-child a")
        assert "sort=name&order=asc" in driver.current_url
        names = [
            r.find_element(by().TAG_NAME, "th").text
            for r in driver.find_elements(by().CSS_SELECTOR, "#seats tbody tr")[:10]
        ]
        assert names == sorted(names, key=str.casefold)
