"""Issue 26, Must show 1: an organiser's mistakes are visible to the organiser, in a real browser
(headless Chromium) against the whole running system.

The owner types a merge field wrong (``{{ target.nmae }}``): saving is refused at the letter's
field, nothing is stored. Then a letter that the sample supporters pass but that fails for one
supporter's MP (``divided_by: 0`` inside ``{% if target.party == "Demo Party" %}``) is
saved and opened; a supporter in GU11 1AA signs and confirms; the mailer cannot write their letter
to their MP:
within a minute the owner sees that signature on the failed letters page, with the reason, and a
banner on the staff pages ("1 letter of … could not be written: …", linked); the owner gets one
email about it. Both pages pass axe. Screenshot: tests/artifacts/organiser-typo-failed.png.
"""

from __future__ import annotations

from typing import Any

from tests.browser import axe_violations, by, chromium, fill, press, screenshot, text_of
from tests.e2e.test_organiser_journey import dearmp
from tests.support import confirm_url_in, wait_for_purpose, wait_until

ORG, ORG_NAME = "typo-rights", "Typo Rights"
OWNER, PASSWORD = "owner@typo-rights.example.org", "a long and memorable passphrase"
SLUG, TITLE = "letters-with-a-trap", "Letters with a trap"
SUPPORTER = "sam.trapped@example.org"
TYPO = (
    "Dear {{ target.nmae }},\n\nPlease act.\n\n{{ supporter.full_name }}\n{{ supporter.address }}"
)
# Written for the sample supporters (their MP sits as an Independent) and on the confirm page (the
# MP not found yet), it fails only once the supporter's own MP is known: Aldershot's demo member
# sits for the Demo Party. (A trap on the supporter's own postcode ends the same way: the confirm
# page then offers the button without the letter; tests/integration/test_visible_failures.py.)
TRAP = (
    "Dear {{ target.name }},\n\nPlease act.\n"
    '{% if target.party == "Demo Party" %}{{ 1 | divided_by: 0 }}{% endif %}\n'
    "{{ supporter.full_name }}\n{{ supporter.address }}"
)
REASON = "divided_by: can't divide by 0"


def serious(driver: Any, name: str) -> list[str]:
    return [
        f"{name}: {v}" for v in axe_violations(driver) if v["impact"] in ("serious", "critical")
    ]


def test_an_organisers_typo_is_refused_and_a_runtime_failure_shows_on_its_pages(
    system, mail
) -> None:
    env = {"DEARMP_DATABASE_URL": system.env["DEARMP_DATABASE_URL"]}
    dearmp(env, "orgs", "add", ORG, "--name", ORG_NAME,
           "--privacy-url", "https://typo-rights.example.org/privacy")  # fmt: skip
    dearmp(env, "staff", "add", OWNER, "--password-stdin", "--org", ORG, "--role", "owner",
           typed=f"{PASSWORD}\n")  # fmt: skip
    system.start("relay", "resolver", "mailer", "intake")
    base = system.base_url
    problems: list[str] = []
    with chromium() as driver:
        driver.get(f"{base}/admin")
        fill(driver, {"email": OWNER, "password": PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert text_of(driver, "h1") == "Campaigns"
        press(driver, "a[href='/admin/campaigns/new']")
        fields = {
            "slug": SLUG,
            "title": TITLE,
            "story": "Why it matters.",
            "letter_subject": "Please act",
            "letter_body": TYPO,
            "goal": "100",
        }
        fill(driver, fields)
        driver.find_element(by().ID, "target_kind-mp").click()

        # The typo: refused at the letter's field, named; nothing saved.
        press(driver, "button[name=action][value=save]")
        assert driver.current_url.endswith("/admin/campaigns/new"), driver.current_url
        at_field = text_of(driver, "#letter_body-error")
        assert "target.nmae is undefined" in at_field, at_field
        assert driver.find_element(by().ID, "letter_body").get_attribute("aria-describedby")
        summary = text_of(driver, ".govuk-error-summary")
        assert "target.nmae is undefined" in summary, summary
        link = driver.find_element(by().CSS_SELECTOR, ".govuk-error-summary a[href='#letter_body']")
        assert link is not None
        problems += serious(driver, "editor-refused")
        screenshot(driver, "organiser-typo-refused")
        driver.get(f"{base}/admin/c/{SLUG}")
        assert text_of(driver, "h1") != TITLE  # not found: nothing was stored

        # A letter the samples pass but one postcode breaks: saved, opened.
        driver.get(f"{base}/admin/campaigns/new")
        fill(driver, {**fields, "letter_body": TRAP})
        driver.find_element(by().ID, "target_kind-mp").click()
        press(driver, "button[name=action][value=save]")
        assert driver.current_url == f"{base}/admin/c/{SLUG}?saved=1", driver.current_url
        press(driver, "#manage button[value=open]")
        assert text_of(driver, "#manage .govuk-tag") == "open"
        assert driver.find_elements(by().ID, "letter-problems") == []  # nothing failed yet

        # A supporter in GU11 1AA signs and confirms.
        driver.get(f"{base}/c/{SLUG}")
        fill(
            driver,
            {
                "first_name": "Sam",
                "last_name": "Trapped",
                "email": SUPPORTER,
                "address_line1": "1 Test Street",
                "town": "Aldershot",
                "postcode": "GU11 1AA",
            },
        )
        driver.find_element(by().ID, "consent").click()
        press(driver, f"form[action='/c/{SLUG}/sign'] button[type=submit]")
        wait_for_purpose(mail, "confirmation", 1, timeout=30)
        confirmation = next(
            c.message for c in mail.messages if str(c.message["Message-ID"]).startswith("<conf")
        )
        driver.get(confirm_url_in(confirmation.get_body(("plain",)).get_content()))
        press(driver, "form button[type=submit]")

        # Within a minute, on the organisation's own failed letters page: the signature, why.
        def failed_row_shown() -> bool:
            driver.get(f"{base}/admin/letters/failed")
            return REASON in driver.find_element(by().TAG_NAME, "main").text

        wait_until(failed_row_shown, 60, 1.0, "the failed letter on the organisation's page")
        rows = driver.find_elements(by().CSS_SELECTOR, "main table tbody tr")
        (row,) = [r.text for r in rows if REASON in r.text] or [driver.page_source[-6000:]]
        assert SLUG in row and "letter" in row and "could not be written" in row, row
        # The banner, on every staff page, names the campaign and links to its failed letters.
        banner = text_of(driver, "#letter-problems")
        assert f"1 letter of {TITLE} could not be written: line 4: {REASON}" in banner, banner
        problems += serious(driver, "failed-letters")
        screenshot(driver, "organiser-typo-failed")
        driver.get(f"{base}/admin")
        press(driver, f"#letter-problems a[href='/admin/letters/failed?campaign={SLUG}']")
        assert text_of(driver, "h1") == f"Failed letters: {SLUG}"
        problems += serious(driver, "campaigns-with-banner")

    # Nothing went out for the signature; its owner hears once.
    assert not [c for c in mail.messages if str(c.message["Message-ID"]).startswith("<letter.")]

    def notices() -> list[Any]:
        return [c for c in mail.messages if "problem_notice" in str(c.message["Message-ID"])]

    wait_until(notices, 90, 0.5, "the owner's notice")
    assert [str(c.message["X-DearMP-Intended-Recipient"]) for c in notices()] == [OWNER]
    assert not problems, "\n".join(problems)
