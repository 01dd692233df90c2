"""The supporter's journeys at their edges, in headless Chromium against the whole system: a
stranger squatting an address and the owner taking it back, signing again after an unusable
postcode, signing again while pending, signing again after confirming, a vacant seat, and a
fixed-target campaign signed in Welsh, with the emails read in Welsh and French. Screenshots of
each step are saved as tests/artifacts/journey-*.png; every thank-you state is also captured by
tests/e2e/test_accessibility.py (thanks-*.png)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.browser import by, chromium, fill, press, screenshot, text_of, wait_for
from tests.fakes import FakeParliament, member
from tests.support import confirm_url_in, wait_until

CAMPAIGN = "guardians-for-children"
FIXED = "specialist-support-for-child-victims"  # a campaign with one fixed target
SUBMIT = "form button[type=submit]"


def _sign(driver: Any, base: str, slug: str, fields: dict[str, str], lang: str = "en") -> None:
    """Fill in the campaign's form as a supporter does, tick consent, and send it."""
    driver.get(f"{base}/c/{slug}?lang={lang}")
    wait_for(driver, f"form[action='/c/{slug}/sign']")
    fill(
        driver,
        {
            "first_name": "Jo",
            "last_name": "Bloggs",
            "address_line1": "1 Test Street",
            "town": "Aldershot",
            "postcode": "GU11 1AA",
            **fields,
        },
    )
    driver.find_element(by().ID, "consent").click()
    press(driver, f"form[action='/c/{slug}/sign'] button[type=submit]")
    assert driver.current_url.endswith(f"/c/{slug}/check-email"), driver.current_url


def _text(caught: Any) -> str:
    return str(caught.message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def _status(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT status FROM signatures ORDER BY 1"))]


def _wait_for_text(driver: Any, css: str, words: str, timeout: float = 30) -> None:
    def shows() -> bool:
        driver.refresh()
        return words in driver.find_element(by().CSS_SELECTOR, css).text

    wait_until(shows, timeout, 0.5, f"the page to say {words!r}")


def _letters(mail: Any) -> list[Any]:
    return [c for c in mail.messages if str(c.message["Message-ID"]).startswith("<letter.")]


def test_squatting_resigning_and_already_signed_in_a_browser(system, mail, engine) -> None:
    system.start()
    base, owner = system.base_url, f"owner-{uuid.uuid4().hex[:6]}@example.org"
    with chromium() as driver:
        # A stranger signs first with the owner's address and words of their own.
        _sign(
            driver,
            base,
            CAMPAIGN,
            {"email": owner, "first_name": "Mallory", "comment": "Words the owner never wrote"},
        )
        squatted = mail.handler.wait_for(1)[0]
        # Nothing the stranger typed reaches the owner's inbox (issue 25): only the confirm
        # page, behind the link, shows the letter.
        assert "never wrote" not in _text(squatted) and "Mallory" not in _text(squatted)
        old_link = confirm_url_in(_text(squatted))
        driver.get(old_link)
        assert "Not you?" in text_of(driver, ".govuk-warning-text")
        assert "Words the owner never wrote" in text_of(driver, ".dearmp-letter")
        screenshot(driver, "journey-01-confirm-shows-the-letter")
        screenshot(driver, "journey-01-confirm-shows-the-letter-320", width=320)

        # The owner signs with their own words: a fresh email; the stranger's link is dead.
        _sign(
            driver, base, CAMPAIGN, {"email": owner, "first_name": "Olu", "comment": "My own words"}
        )
        fresh = mail.handler.wait_for(2)[1]
        assert "My own words" not in _text(fresh) and "never wrote" not in _text(fresh)
        driver.get(old_link)
        assert text_of(driver, "h1") == "This link does not work"
        assert "only the link in the newest email works" in driver.page_source
        screenshot(driver, "journey-02-old-link-does-not-work")
        driver.get(confirm_url_in(_text(fresh)))
        press(driver, SUBMIT)
        _wait_for_text(driver, "[role=status]", "your letter went to")
        screenshot(driver, "journey-03-sent")
        letters = _letters(mail)
        assert len(letters) == 1 and "My own words" in _text(letters[0])
        assert "never wrote" not in _text(letters[0])
        with engine.connect() as conn:  # one signature; only the newest waits for a reminder
            assert conn.execute(sa.text("SELECT count(*) FROM signatures")).scalar_one() == 1
            assert (
                conn.execute(sa.text("SELECT count(*) FROM pending_confirmations")).scalar_one()
                == 1
            )

        # Signing again after confirming: the same neutral page, an email, no second letter.
        _sign(driver, base, CAMPAIGN, {"email": owner, "comment": "Once more"})
        assert text_of(driver, "h1") == "Check your email"
        screenshot(driver, "journey-04-signed-again-neutral-page")
        wait_until(
            lambda: any("<repeat." in str(c.message["Message-ID"]) for c in mail.messages),
            30,
            message="the 'already signed' email",
        )
        again = next(c for c in mail.messages if "<repeat." in str(c.message["Message-ID"]))
        assert "Your letter went to Alex Demo on" in _text(again)
        assert len(_letters(mail)) == 1
        with engine.connect() as conn:  # the confirmed signature is left as it was
            comment = conn.execute(sa.text("SELECT comment FROM signatures")).scalar_one()
        assert comment == "My own words"

        # Signing again while pending (the email was lost): a new link that works.
        other = f"lost-{uuid.uuid4().hex[:6]}@example.org"
        _sign(driver, base, CAMPAIGN, {"email": other})
        _sign(driver, base, CAMPAIGN, {"email": other})
        wait_until(
            lambda: (
                sum(c.message["X-DearMP-Intended-Recipient"] == other for c in mail.messages) == 2
            ),
            30,
            message="two confirmations for the lost email",
        )
        first, second = [
            c for c in mail.messages if c.message["X-DearMP-Intended-Recipient"] == other
        ]
        driver.get(confirm_url_in(_text(first)))
        assert text_of(driver, "h1") == "This link does not work"
        driver.get(confirm_url_in(_text(second)))
        press(driver, SUBMIT)
        assert text_of(driver, ".govuk-panel h1") == "Your signature is confirmed"


def test_signing_again_with_the_current_postcode_in_a_browser(system, mail, engine) -> None:
    system.start()
    base, email = system.base_url, f"moved-{uuid.uuid4().hex[:6]}@example.org"
    with chromium() as driver:
        _sign(driver, base, CAMPAIGN, {"email": email, "postcode": "SW1A 9ZZ"})  # not in use
        driver.get(confirm_url_in(_text(mail.handler.wait_for(1)[0])))
        press(driver, SUBMIT)
        _wait_for_text(driver, "[role=status]", "no longer in use")
        screenshot(driver, "journey-05-postcode-no-longer-in-use")
        notice = mail.handler.wait_for(2, timeout=30)[1]
        assert "Sign again with your current postcode" in _text(notice)
        press(driver, "[role=status] a")  # "Sign again with your current postcode"
        assert driver.current_url.endswith(f"/c/{CAMPAIGN}")
        _sign(driver, base, CAMPAIGN, {"email": email, "postcode": "GU11 1AA"})
        driver.get(confirm_url_in(_text(mail.handler.wait_for(3, timeout=30)[2])))
        press(driver, SUBMIT)
        _wait_for_text(driver, "[role=status]", "your letter went to")
        screenshot(driver, "journey-06-sent-after-signing-again")
    assert len(_letters(mail)) == 1


def test_a_fixed_target_signed_in_welsh_and_french(system, mail) -> None:
    system.start()
    base = system.base_url
    with chromium() as driver:
        driver.get(f"{base}/c/{FIXED}?lang=cy")
        assert "The Home Secretary" in text_of(driver, "main")
        assert "eich AS" not in text_of(driver, "main")  # never "your MP"
        _sign(driver, base, FIXED, {"email": "cymraeg@example.org"}, lang="cy")
        screenshot(driver, "journey-07-check-email-cy")
        confirmation = mail.handler.wait_for(1)[0]
        text = _text(confirmation)
        assert text.startswith("Helo,")  # never the name typed on the form (issue 25)
        assert "dangos y llythyr y byddwn yn ei anfon at The Home Secretary" in text
        driver.get(confirm_url_in(text))
        assert "The Home Secretary" in text_of(driver, "main")
        screenshot(driver, "journey-08-confirm-fixed-target-cy")
        press(driver, SUBMIT)
        _wait_for_text(driver, "[role=status]", "Home Secretary")
        assert "AS dros" not in text_of(driver, "[role=status]")
        screenshot(driver, "journey-09-thanks-fixed-target-cy")
        copy = mail.handler.wait_for(3, timeout=30)[2]
        assert str(copy.message["Subject"]).strip().startswith("Eich llythyr at The Home Secretary")

        _sign(driver, base, FIXED, {"email": "francais@example.org"}, lang="fr")
        french = mail.handler.wait_for(4, timeout=30)[3]
        assert _text(french).startswith("Bonjour,")
        assert "affiche la lettre que nous enverrons à The Home Secretary en votre nom" in _text(
            french
        )


@pytest.fixture
def vacant_seat(service_env: dict[str, str]) -> Iterator[FakeParliament]:
    """Members API and postcodes.io stand-ins where Leeds Central has no MP."""
    server = FakeParliament(
        postcodes={"LS2 9JT": ("Leeds Central and Headingley", "E14001330")},
        seats={"Leeds Central and Headingley": None},
        contacts={},
    ).start()
    service_env.update(
        {
            "DEARMP_RESOLVER_BACKENDS": "postcodes_io",
            "DEARMP_POSTCODES_IO_URL": server.url,
            "DEARMP_MEMBERS_API_URL": server.url,
            "DEARMP_VACANT_RETRY_SECONDS": "1",
            "DEARMP_HELD_SWEEP_SECONDS": "0.5",
        }
    )
    yield server
    server.stop()


def test_a_vacant_seat_in_a_browser(vacant_seat, system, mail, engine) -> None:
    system.start()
    with chromium() as driver:
        _sign(
            driver,
            system.base_url,
            CAMPAIGN,
            {"email": "leeds@example.org", "postcode": "LS2 9JT", "town": "Leeds"},
        )
        driver.get(confirm_url_in(_text(mail.handler.wait_for(1)[0])))
        press(driver, SUBMIT)
        _wait_for_text(driver, "[role=status]", "has no MP at the moment")
        assert (
            driver.find_elements(by().CSS_SELECTOR, "[data-refresh]") == []
        )  # nothing to wait for
        screenshot(driver, "journey-10-seat-vacant")
        held = mail.handler.wait_for(2, timeout=30)[1]
        assert "Leeds Central and Headingley has no MP" in _text(held)

        # The by-election: the letter goes to the new member; the notice was sent once.
        vacant_seat.contacts[4010] = [
            {"type": "Parliamentary office", "isPreferred": True, "email": "new.mp@parliament.uk"}
        ]
        vacant_seat.seats["Leeds Central and Headingley"] = member(4010, "New Member")
        _wait_for_text(driver, "[role=status]", "your letter went to")
        screenshot(driver, "journey-11-sent-to-the-new-mp")
    letters = _letters(mail)
    assert len(letters) == 1
    assert letters[0].message["X-DearMP-Intended-Recipient"] == "new.mp@parliament.uk"
    assert sum("<held." in str(c.message["Message-ID"]) for c in mail.messages) == 1
    assert _status(engine) == ["sent"]
