"""Issue 26, Must show 3: the thank-you page's every stage (services/intake/progress.py) in
English, Welsh and French, as a supporter meets it: a link opened from their email in a browser
that has never been to the site (headless Chromium, a fresh profile for each language, no
cookie, a browser that asks for British English). Each page speaks the language the supporter
signed in, and holds its own stage's words and no other stage's, so no page says two
contradictory things. Screenshots: tests/artifacts/thanks-<stage>-<lang>.png.

The second test walks it for real: a supporter signs in French, and opens the confirmation link
from the email in another fresh browser; the confirm and thank-you pages are in French, through
to "sent"."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from services.intake import i18n
from services.intake.models import signatures
from services.intake.progress import SAYS, Stage, progress_of, sentences
from services.mailer.models import letters
from shared.states import SignatureStatus
from shared.tokens import make_token
from tests.browser import by, chromium, fill, press, screenshot, text_of, wait_for
from tests.integration.admin_helpers import CAMPAIGN, make_signature_row, waiting_letter_row
from tests.support import confirm_url_in, wait_until

LANGUAGES = ("en", "cy", "fr")
DAY = date(2026, 12, 8)
SENT_AT = datetime(2026, 12, 7, 22, 50, 43, tzinfo=UTC)
# Each stage, as the row intake holds for it (and the mailer's row for a letter that waits).
ROWS: dict[Stage, dict[str, Any]] = {
    Stage.PENDING: {"status": SignatureStatus.PENDING},
    Stage.FINDING: {"status": SignatureStatus.CONFIRMED},
    Stage.GOING: {"status": SignatureStatus.RESOLVED, "target_name": "Alex Demo"},
    Stage.TAKING_LONGER: {"status": SignatureStatus.CONFIRMED},  # opened with ?wait=12
    Stage.DIGEST: {"status": SignatureStatus.RESOLVED, "target_name": "Alex Demo"},
    Stage.SCHEDULED: {"status": SignatureStatus.RESOLVED, "target_name": "Alex Demo"},
    Stage.SENT: {"status": SignatureStatus.SENT, "target_name": "Alex Demo", "sent_at": SENT_AT},
    Stage.HELD: {"status": SignatureStatus.HELD},
    Stage.HELD_UNNAMED: {"status": SignatureStatus.HELD, "constituency_name": None},
    Stage.UNRESOLVABLE: {
        "status": SignatureStatus.UNRESOLVABLE,
        "unresolvable_reason": "terminated_postcode",
        "constituency_name": None,
    },
    Stage.NO_EMAIL: {
        "status": SignatureStatus.UNRESOLVABLE,
        "unresolvable_reason": "no_contact",
        "target_name": "Sam Quiet",
    },
    Stage.FAILED: {"status": SignatureStatus.FAILED, "target_name": "Alex Demo"},
    Stage.ERASED: {"status": SignatureStatus.SENT, "target_name": "Alex Demo", "sent_at": SENT_AT},
}


def _stored(engine: sa.Engine, stage: Stage, language: str) -> uuid.UUID:
    now = datetime.now(UTC)
    row = make_signature_row(created_at=now, confirmed_at=now)
    row.update({"language": language, "supporter_key": f"k{uuid.uuid4().hex}", **ROWS[stage]})
    if stage is Stage.ERASED:  # what erasure leaves (handlers.forget_supporter)
        row.update(first_name="[erased]", last_name="", postcode="", supporter_key=None)
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [row])
        if stage in (Stage.DIGEST, Stage.SCHEDULED):
            waiting = waiting_letter_row(
                signature_id=row["id"], day=DAY, digest=stage is Stage.DIGEST
            )
            conn.execute(letters.insert().values(**waiting))
    return row["id"]  # type: ignore[no-any-return]


def _every_stages_words(language: str) -> dict[Stage, set[str]]:
    """Each stage's sentences in ``language``, as progress.py says them for these rows."""
    gettext = i18n.translations(language).gettext
    said: dict[Stage, set[str]] = {}
    for stage, values in ROWS.items():
        row = SimpleNamespace(
            erased=stage is Stage.ERASED,
            confirmed_at=None,
            constituency_name=values.get("constituency_name", "Aldershot"),
            **{
                k: values.get(k)
                for k in ("status", "target_name", "unresolvable_reason", "sent_at")
            },
        )
        waiting = SimpleNamespace(day=DAY, digest=stage is Stage.DIGEST)
        progress = progress_of(
            row,
            fixed_target=None,
            waiting=waiting if stage in (Stage.DIGEST, Stage.SCHEDULED) else None,
            looked=12 if stage is Stage.TAKING_LONGER else 0,
        )
        assert progress.stage is stage, (stage, progress)
        said[stage] = set(sentences(progress, gettext, language))
    return said


def _sentences_in(driver: Any) -> str:
    return " ".join(text_of(driver, "main").split())


def test_every_thank_you_stage_in_each_language_from_a_cookieless_browser(system, engine) -> None:
    system.start("intake")
    secret = system.env["DEARMP_SECRET_KEY"]
    assert set(ROWS) == set(Stage) == set(SAYS)  # a new stage is shown here too
    problems: list[str] = []
    for language in LANGUAGES:
        words = _every_stages_words(language)
        links = {
            stage: f"/thanks/{make_token(secret, 'thanks', str(_stored(engine, stage, language)))}"
            + ("?wait=12" if stage is Stage.TAKING_LONGER else "")
            for stage in ROWS
        }
        with chromium() as driver:  # a fresh profile: no cookie; the browser asks for en-GB
            for stage, link in links.items():
                driver.get(f"{system.base_url}{link}")
                wait_for(driver, "main")
                shown = driver.find_element(by().TAG_NAME, "html").get_attribute("lang")
                if shown != language:
                    problems.append(f"{stage} ({language}): the page is in {shown}")
                text = _sentences_in(driver)
                for sentence in words[stage]:
                    if " ".join(sentence.split()) not in text:
                        problems.append(f"{stage} ({language}): missing {sentence!r}")
                for other, sentences_of_other in words.items():
                    for sentence in sentences_of_other - words[stage]:
                        if " ".join(sentence.split()) in text:
                            problems.append(
                                f"{stage} ({language}): also says {other}: {sentence!r}"
                            )
                if stage is Stage.ERASED and re.search(r"Alex Demo|Aldershot|Jo Bloggs", text):
                    problems.append(f"erased ({language}): names someone: {text!r}")
                if stage is Stage.SENT and language == "en":
                    assert "7 December 2026" in text and "December 7" not in text, text
                screenshot(driver, f"thanks-{stage.value.replace('_', '-')}-{language}")
    assert not problems, "\n".join(problems)


def _text(caught: Any) -> str:
    return str(caught.message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def test_the_french_email_leads_to_french_pages(system, mail, engine) -> None:
    system.start()
    base = system.base_url
    with chromium() as signing:
        signing.get(f"{base}/c/{CAMPAIGN}?lang=fr")
        wait_for(signing, f"form[action='/c/{CAMPAIGN}/sign']")
        fill(
            signing,
            {
                "first_name": "Camille",
                "last_name": "Martin",
                "email": f"camille-{uuid.uuid4().hex[:6]}@example.org",
                "address_line1": "1 Test Street",
                "town": "Aldershot",
                "postcode": "GU11 1AA",
                "comment": "@Alex Demo : merci\n+1 pour les tuteurs",
            },
        )
        signing.find_element(by().ID, "consent").click()
        press(signing, f"form[action='/c/{CAMPAIGN}/sign'] button[type=submit]")
    link = confirm_url_in(_text(mail.handler.wait_for(1)[0]))
    with chromium() as mail_app:  # the link opened from the mail app: another browser, no cookie
        mail_app.get(link)
        assert mail_app.find_element(by().TAG_NAME, "html").get_attribute("lang") == "fr"
        assert text_of(mail_app, "h1") == "Confirmez votre signature"
        letter = text_of(mail_app, ".dearmp-letter")
        assert "@Alex Demo : merci" in letter and "+1 pour les tuteurs" in letter
        screenshot(mail_app, "journey-fr-confirm-from-the-email")
        press(mail_app, "form button[type=submit]")
        assert mail_app.find_element(by().TAG_NAME, "html").get_attribute("lang") == "fr"

        def sent() -> bool:
            mail_app.refresh()
            return "votre lettre a été envoyée à Alex Demo" in text_of(mail_app, "main")

        wait_until(sent, 60, 0.5, "the French thank-you page to say the letter went")
        said = text_of(mail_app, "[role=status]")
        assert "va être envoyée" not in said and "Nous recherchons" not in said, said
        screenshot(mail_app, "journey-fr-thanks-sent-from-the-email")
    letters_sent = [c for c in mail.messages if str(c.message["Message-ID"]).startswith("<letter.")]
    assert letters_sent and "+1 pour les tuteurs" in _text(letters_sent[0])
