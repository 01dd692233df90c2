"""Every page anyone can reach passes axe-core's WCAG 2.2 A and AA rules with no violation, in
English, Welsh and French, and fits a 320 px screen without scrolling sideways: the campaign page
and its form with errors, check-email, help (and its errors), confirm (and a link that does not
work), the thank-you page in each state, privacy, terms, unsubscribe, 404, and every staff page.
Screenshots of the thank-you states go to tests/artifacts/ (thanks-<state>.png).

Skipped with its reason only where Chromium or selenium-axe-python is missing (failed under CI).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.intake.models import signatures
from services.mailer.models import letters
from shared.states import SignatureStatus
from shared.tokens import make_token
from shared.unsubscribe import make_unsubscribe_token
from tests.browser import (
    axe_violations,
    by,
    chromium,
    fill,
    overflows,
    press,
    screenshot,
    set_width,
    wait_for,
)
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    add_help_request,
    make_signature_row,
    make_staff,
    waiting_letter_row,
)

LANGUAGES = ("en", "cy", "fr")
# English at a desktop's width and a small phone's; Welsh and French (longer words, so the first
# to overflow) at the phone's. Most rules do not depend on the width; the run stays short.
WIDTHS = {"en": (1280, 320), "cy": (320,), "fr": (320,)}
FIXED = "specialist-support-for-child-victims"  # a campaign with one fixed target
# Each state a thank-you page can show, as the row intake holds for it.
STATES: dict[str, dict[str, Any]] = {
    "pending": {"status": SignatureStatus.PENDING},
    "finding": {"status": SignatureStatus.CONFIRMED},
    "going": {"status": SignatureStatus.RESOLVED, "target_name": "Alex Demo"},
    "held": {"status": SignatureStatus.HELD},
    "unresolvable": {
        "status": SignatureStatus.UNRESOLVABLE,
        "unresolvable_reason": "terminated_postcode",
    },
    "sent": {"status": SignatureStatus.SENT, "target_name": "Alex Demo"},
    "failed": {"status": SignatureStatus.FAILED, "target_name": "Alex Demo"},
    "erased": {"status": SignatureStatus.ERASED},
    # Issue 26: a letter waiting for its day (digest, daily cap), an MP with no email address.
    "digest": {"status": SignatureStatus.RESOLVED, "target_name": "Alex Demo"},
    "scheduled": {"status": SignatureStatus.RESOLVED, "target_name": "Alex Demo"},
    "no-email": {
        "status": SignatureStatus.UNRESOLVABLE,
        "unresolvable_reason": "no_contact",
        "target_name": "Sam Quiet",
    },
}


def _tokens(engine: sa.Engine, secret: str) -> tuple[dict[str, str], str]:
    """A signature in each state: its confirm token (``state``) and its thank-you page's
    (``thanks-state``); and an unsubscribe token."""
    now = datetime.now(UTC)
    tokens, rows = {}, []
    for state, values in STATES.items():
        row = make_signature_row(created_at=now, confirmed_at=now)
        row.update(values)
        if state == "sent":
            row["sent_at"] = now
        rows.append(row)
        tokens[state] = make_token(secret, "confirm", str(row["id"]))
        tokens[f"thanks-{state}"] = make_token(secret, "thanks", str(row["id"]))
    with engine.begin() as conn:
        conn.execute(signatures.insert(), rows)
        for row, state in zip(rows, STATES, strict=True):
            if state in ("digest", "scheduled"):  # the mailer's row of a letter that waits
                waiting = waiting_letter_row(
                    signature_id=row["id"], day=now.date(), digest=state == "digest"
                )
                conn.execute(letters.insert().values(**waiting))
    failed = rows[list(STATES).index("failed")]
    return tokens, make_unsubscribe_token(secret, failed["id"], CAMPAIGN)


def _check(
    driver: Any, url: str, name: str, problems: list[str], widths: tuple[int, ...] = (1280, 320)
) -> None:
    for index, width in enumerate(widths):
        set_width(driver, width)
        driver.get(url) if index == 0 else driver.refresh()
        wait_for(driver, "body")
        for violation in axe_violations(driver):
            problems.append(f"{name} @{width}px: {violation}")
        if width < 600 and overflows(driver):
            problems.append(f"{name} @{width}px: wider than the screen")


def _check_after_pressing(
    driver: Any,
    url: str,
    button: str,
    name: str,
    problems: list[str],
    widths: tuple[int, ...] = (1280, 320),
) -> None:
    """A page reached by submitting a form (its errors), at each width."""
    for width in widths:
        set_width(driver, width)
        driver.get(url)
        press(driver, button)
        for violation in axe_violations(driver):
            problems.append(f"{name} @{width}px: {violation}")
        if width < 600 and overflows(driver):
            problems.append(f"{name} @{width}px: wider than the screen")


def test_every_public_page_passes_axe_in_english_welsh_and_french(system, engine) -> None:
    system.start("intake")
    secret = system.env["DEARMP_SECRET_KEY"]
    tokens, unsubscribe = _tokens(engine, secret)
    base = system.base_url
    pages = {
        "home": "/",
        "campaign": f"/c/{CAMPAIGN}",
        "campaign-fixed-target": f"/c/{FIXED}",
        "check-email": f"/c/{CAMPAIGN}/check-email",
        "help": f"/c/{CAMPAIGN}/help",
        "confirm": f"/confirm/{tokens['pending']}",
        "confirm-used": f"/confirm/{tokens['sent']}",
        "confirm-invalid": "/confirm/not-a-token",
        "privacy": "/privacy",
        "terms": "/terms",
        "unsubscribe": f"/unsubscribe/{unsubscribe}",
        "not-found": "/no-such-page",
        **{state: f"/thanks/{token}" for state, token in tokens.items() if "thanks-" in state},
    }
    problems: list[str] = []
    with chromium() as driver:
        for lang in LANGUAGES:
            for name, path in pages.items():
                url = f"{base}{path}?lang={lang}"
                _check(driver, url, f"{name} ({lang})", problems, WIDTHS[lang])
                if lang == "en" and name.startswith("thanks-"):
                    screenshot(driver, name)
            # Forms sent empty: the error summary and each field's message.
            _check_after_pressing(
                driver,
                f"{base}/c/{CAMPAIGN}?lang={lang}",
                "form[action$='/sign'] button[type=submit]",
                f"campaign-with-errors ({lang})",
                problems,
                WIDTHS[lang],
            )
            _check_after_pressing(
                driver,
                f"{base}/c/{CAMPAIGN}/help?lang={lang}",
                "form[action$='/help'] button[type=submit]",
                f"help-with-errors ({lang})",
                problems,
                WIDTHS[lang],
            )
    assert not problems, "\n".join(problems)


def test_every_staff_page_passes_axe(system, engine) -> None:
    make_staff(engine)
    add_help_request(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [make_signature_row(created_at=now, confirmed_at=now)])
    system.start("intake")
    base = system.base_url
    problems: list[str] = []
    with chromium() as driver:
        _check(driver, f"{base}/admin/login", "login", problems)
        _check_after_pressing(
            driver,
            f"{base}/admin/login",
            "form[action='/admin/login'] button[type=submit]",
            "login-with-errors",
            problems,
        )
        driver.get(f"{base}/admin/login")
        fill(driver, {"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
        press(driver, "form[action='/admin/login'] button[type=submit]")
        assert driver.find_element(by().TAG_NAME, "h1").text == "Campaigns"
        for name, path in {
            "campaigns": "/admin",
            "campaign": f"/admin/c/{CAMPAIGN}",
            "failed-letters": "/admin/letters/failed",
            "dead-letters": "/admin/dlq",
            "subject-access": "/admin/supporters",
        }.items():
            _check(driver, f"{base}{path}", name, problems)
        # Subject access with a result, and with an error.
        set_width(driver, 1280)
        for email, name in (
            ("jo@example.org", "subject-access-result"),
            ("x", "subject-access-error"),
        ):
            driver.get(f"{base}/admin/supporters")
            fill(driver, {"email": email})
            press(driver, "form[action='/admin/supporters'] button[type=submit]")
            problems += [f"{name}: {v}" for v in axe_violations(driver)]
        # The update composer's preview.
        set_width(driver, 1280)
        driver.get(f"{base}/admin/c/{CAMPAIGN}")
        title = f"Accessibility check {uuid.uuid4().hex[:6]}"
        fill(driver, {"title": title, "body": "# A heading\n\nSome *words*."})
        press(driver, "button[name=action][value=preview]")
        for violation in axe_violations(driver):
            problems.append(f"update-preview: {violation}")
    assert not problems, "\n".join(problems)
