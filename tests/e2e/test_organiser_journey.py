"""Issue 18, Must show 1: an organiser's whole journey in a real browser (headless Chromium).

An operator adds an organisation and its owner with the CLI; the owner signs in at /admin, writes
a campaign whose letters go to each supporter's MP with a copy to a fixed target, previews the
letter for a demo postcode, saves and opens it; a supporter signs from the public page (a link
with ``?source=``) and confirms from the email; the letter goes to the MP and its copy to the
fixed target; the owner sees the signature on the dashboard (the counts, the sources, the
constituency table and the hex map) and downloads both CSV exports with the browser's session.
The editor and the dashboard pass axe (WCAG 2.2 A/AA). Screenshots: tests/artifacts/
organiser-dashboard.png and organiser-map.png.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from services.intake.admin.hexmap import SHADES
from tests.browser import (
    ARTIFACTS,
    axe_violations,
    by,
    chromium,
    fill,
    press,
    screenshot,
    text_of,
    wait_for,
)
from tests.support import confirm_url_in, wait_for_purpose

ORG, ORG_NAME = "acme-rights", "Acme Rights"
OPT_IN = "Send me news from Acme Rights"
OWNER, PASSWORD = "owner@acme-rights.example.org", "a long and memorable passphrase"
SLUG = "safe-routes-for-children"
FIXED_NAME, FIXED_EMAIL = "The Home Secretary", "home.secretary@example.gov.uk"
MP_NAME, MP_EMAIL = "Alex Demo", "alex.demo.mp@demo-parliament.invalid"
ALDERSHOT = "E14001063"
SUPPORTER = "jo.organiser-test@example.org"
BODY = (
    "Dear {{ target.name }},\n\nPlease open safe routes for children seeking safety.\n"
    "{% if supporter.comment %}\n{{ supporter.comment }}\n{% endif %}\n"
    "Yours sincerely,\n\n{{ supporter.full_name }}\n{{ supporter.address }}"
)


def dearmp(env: dict[str, str], *args: str, typed: str | None = None) -> str:
    """Run a ``dearmp`` command as an operator would, against the test's database (in this
    process, through typer's runner: a subprocess would spend seconds importing it)."""
    from typer.testing import CliRunner

    from services.ops.cli import app

    done = CliRunner().invoke(app, list(args), input=typed, env=env)
    assert done.exit_code == 0, done.output
    return str(done.output).strip()


def serious(driver: Any, name: str) -> list[str]:
    return [
        f"{name}: {v}" for v in axe_violations(driver) if v["impact"] in ("serious", "critical")
    ]


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))


def test_an_organiser_runs_a_campaign_from_the_browser(system, mail) -> None:
    env = {"DEARMP_DATABASE_URL": system.env["DEARMP_DATABASE_URL"]}
    added = dearmp(
        env, "orgs", "add", ORG, "--name", ORG_NAME,
        "--privacy-url", "https://acme-rights.example.org/privacy", "--list-opt-in", OPT_IN,
    )  # fmt: skip
    assert added == f"added organisation {ORG}: {ORG_NAME}"
    owner = dearmp(
        env, "staff", "add", OWNER, "--password-stdin", "--org", ORG, "--role", "owner",
        typed=f"{PASSWORD}\n",
    )  # fmt: skip
    assert owner == f"added staff account {OWNER} in {ORG} as owner"
    system.start("relay", "resolver", "mailer", "intake")  # no updates: nobody subscribes
    base = system.base_url
    problems: list[str] = []
    with chromium() as driver:  # scripts on: axe runs as one
        # The owner signs in; their organisation has no campaign yet.
        driver.get(f"{base}/admin")
        fill(driver, {"email": OWNER, "password": PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert text_of(driver, "h1") == "Campaigns"
        assert driver.find_elements(by().CSS_SELECTOR, "a[href^='/admin/c/']") == []
        press(driver, "a[href='/admin/campaigns/new']")
        assert text_of(driver, "h1") == "New campaign"
        # An organisation's account makes campaigns for its own organisation only.
        assert driver.find_elements(by().ID, "organisation") == []
        problems += serious(driver, "editor")

        # The campaign: the supporter's MP, and a copy to a fixed target.
        fill(
            driver,
            {
                "slug": SLUG,
                "title": "Safe routes for children",
                "story": "Children fleeing danger need a safe way here.\n\nAsk for safe routes.",
                "target_name": FIXED_NAME,
                "target_email": FIXED_EMAIL,
                "letter_subject": "Safe routes for children",
                "letter_body": BODY,
                "goal": "250",
                "disclosure": "Sent through the Acme Rights campaign.",
                "postcode": "GU11 1AA",
            },
        )
        driver.find_element(by().ID, "target_kind-both").click()

        # Preview for a demo postcode: the letter as Aldershot's MP gets it, and the copy.
        press(driver, "button[name=action][value=preview]")
        preview = wait_for(driver, "#preview")
        emails = [h.text for h in preview.find_elements(by().CSS_SELECTOR, "h3")]
        assert any(MP_NAME in h for h in emails), emails
        assert any(FIXED_NAME in h for h in emails), emails
        letters = [p.text for p in preview.find_elements(by().CSS_SELECTOR, "pre")]
        assert letters and letters[0].startswith(f"Dear {MP_NAME},"), letters
        assert "Sent through the Acme Rights campaign." in letters[0]
        # The public page, with the organisation's own-list opt-in (the campaign is not stored
        # yet: the preview must not remember it as having none).
        assert "Children fleeing danger need a safe way here." in preview.text
        assert OPT_IN in preview.text
        # Nothing is saved by a preview; the form keeps what was typed.
        assert driver.find_element(by().ID, "target_kind-both").is_selected()
        assert driver.find_element(by().ID, "slug").get_attribute("value") == SLUG
        screenshot(driver, "organiser-01-preview")
        problems += serious(driver, "editor-preview")

        press(driver, "button[name=action][value=save]")
        assert driver.current_url == f"{base}/admin/c/{SLUG}?saved=1", driver.current_url
        assert "Version 1 is saved." in text_of(driver, "[role=status]")
        assert text_of(driver, "#manage .govuk-tag") == "paused"
        press(driver, "#manage button[value=open]")
        assert text_of(driver, "#manage .govuk-tag") == "open"
        assert f"with a copy to {FIXED_NAME}" in text_of(driver, "#manage")

        # A supporter follows a shared link to the public page and signs.
        driver.get(f"{base}/c/{SLUG}?source=newsletter")
        wait_for(driver, f"form[action='/c/{SLUG}/sign']")
        assert f"a copy of it to {FIXED_NAME}" in text_of(driver, "main")
        fill(
            driver,
            {
                "first_name": "Jo",
                "last_name": "Organiser-Test",
                "email": SUPPORTER,
                "address_line1": "1 Test Street",
                "town": "Aldershot",
                "postcode": "gu11 1aa",
                "comment": "My school took in two of these children.",
            },
        )
        driver.find_element(by().ID, "org_opt_in").click()
        driver.find_element(by().ID, "consent").click()
        press(driver, f"form[action='/c/{SLUG}/sign'] button[type=submit]")
        assert text_of(driver, "h1") == "Check your email"

        # The email's link opens a page with a button; pressing it confirms.
        wait_for_purpose(mail, "confirmation", 1, timeout=30)
        confirmation = next(
            c.message for c in mail.messages if str(c.message["Message-ID"]).startswith("<conf")
        )
        assert confirmation["X-DearMP-Intended-Recipient"] == SUPPORTER
        driver.get(confirm_url_in(confirmation.get_body(("plain",)).get_content()))
        press(driver, "form button[type=submit]")
        assert text_of(driver, ".govuk-panel h1") == "Your signature is confirmed"

        # The letter goes to the MP, and a copy of the same letter to the fixed target.
        wait_for_purpose(mail, "letter", 1, timeout=30)
        wait_for_purpose(mail, "fixed_copy", 1, timeout=30)
        sent = {
            str(c.message["Message-ID"]).strip("<").split(".")[0]: c.message for c in mail.messages
        }
        assert sent["letter"]["X-DearMP-Intended-Recipient"] == MP_EMAIL
        assert sent["fixed_copy"]["X-DearMP-Intended-Recipient"] == FIXED_EMAIL
        text = sent["letter"].get_body(("plain",)).get_content()
        assert text.startswith(f"Dear {MP_NAME},") and "two of these children" in text
        assert sent["fixed_copy"].get_body(("plain",)).get_content() == text

        # The dashboard: the count, the source, the constituency table and the map.
        driver.get(f"{base}/admin/c/{SLUG}")
        count = text_of(driver, ".dearmp-count")
        assert count.startswith("1 confirmed of a goal of 250"), count
        assert "100.0%" in text_of(driver, "#confirmation + p")
        source = driver.find_element(by().CSS_SELECTOR, "#sources-table tbody tr")
        assert source.find_element(by().TAG_NAME, "th").text == "newsletter"
        seats = [
            [cell.text for cell in row.find_elements(by().CSS_SELECTOR, "th, td")]
            for row in driver.find_elements(by().CSS_SELECTOR, "#seats tbody tr")
        ]
        assert seats == [["Aldershot", f"{MP_NAME} (Demo Party)", "1"]], seats
        hexmap = wait_for(driver, "svg[aria-labelledby^='constituency-map']")
        assert len(hexmap.find_elements(by().CSS_SELECTOR, "path[data-code]")) == 650
        aldershot = hexmap.find_element(by().CSS_SELECTOR, f"path[data-code='{ALDERSHOT}']")
        assert aldershot.get_attribute("textContent") == "Aldershot: 1 signature"
        assert aldershot.get_attribute("fill") == SHADES[-1]  # the busiest seat: the darkest
        problems += serious(driver, "dashboard")
        screenshot(driver, "organiser-dashboard")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.set_window_size(1280, 1400)
        driver.execute_script("arguments[0].scrollIntoView()", hexmap)
        assert hexmap.screenshot(str(ARTIFACTS / "organiser-map.png"))

        # Both exports, downloaded with the browser's session.
        cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
        with httpx.Client(base_url=base, cookies=cookies, timeout=30) as owner_session:
            supporters = csv_rows(owner_session.get(f"/admin/c/{SLUG}/exports/supporters.csv"))
            seats_csv = csv_rows(owner_session.get(f"/admin/c/{SLUG}/exports/constituencies.csv"))
        assert [(r["email"], r["postcode"], r["constituency"]) for r in supporters] == [
            (SUPPORTER, "GU11 1AA", "Aldershot")
        ]
        assert supporters[0]["opt_in_wording"] == OPT_IN
        assert seats_csv == [
            {
                "constituency_code": ALDERSHOT,
                "constituency": "Aldershot",
                "mp": MP_NAME,
                "party": "Demo Party",
                "signatures": "1",
            }
        ]
        # Each export is logged on the dashboard: who, which, how many rows.
        driver.refresh()
        log = driver.find_element(
            by().XPATH, "//table[starts-with(caption, 'Exports of this campaign')]"
        ).text
        assert log.count(OWNER) == 2 and "Signatures per constituency" in log, log
    assert not problems, "\n".join(problems)
