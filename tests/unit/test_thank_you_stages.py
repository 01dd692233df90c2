"""The thank-you page's state machine (services/intake/progress.py), without a server: each row
maps to one stage, and each stage says its words, filled in, in English, Welsh and French."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.intake import i18n
from services.intake.progress import LOOKS, SAYS, Stage, links_of, progress_of, sentences
from shared.states import SignatureStatus

SENT_AT = datetime(2026, 12, 7, 22, 50, tzinfo=UTC)


def _row(status: SignatureStatus, **values: Any) -> SimpleNamespace:
    fields = {
        "status": status,
        "target_name": None,
        "constituency_name": "Aldershot",
        "unresolvable_reason": None,
        "sent_at": None,
        "confirmed_at": None,
        "erased": False,
    }
    return SimpleNamespace(**{**fields, **values})


CASES: dict[Stage, tuple[SimpleNamespace, dict[str, Any]]] = {
    Stage.PENDING: (_row(SignatureStatus.PENDING), {}),
    Stage.FINDING: (_row(SignatureStatus.CONFIRMED, constituency_name=None), {}),
    Stage.GOING: (_row(SignatureStatus.RESOLVED, target_name="Alex Demo"), {}),
    Stage.TAKING_LONGER: (
        _row(SignatureStatus.RESOLVED, target_name="Alex Demo"),
        {"looked": LOOKS},
    ),
    Stage.DIGEST: (
        _row(SignatureStatus.RESOLVED, target_name="Alex Demo"),
        {"waiting": SimpleNamespace(day=date(2026, 12, 8), digest=True), "looked": LOOKS},
    ),
    Stage.SCHEDULED: (
        _row(SignatureStatus.RESOLVED, target_name="Alex Demo"),
        {"waiting": SimpleNamespace(day=date(2026, 12, 8), digest=False)},
    ),
    Stage.SENT: (_row(SignatureStatus.SENT, target_name="Alex Demo", sent_at=SENT_AT), {}),
    Stage.HELD: (_row(SignatureStatus.HELD), {}),
    Stage.HELD_UNNAMED: (_row(SignatureStatus.HELD, constituency_name=None), {}),
    Stage.UNRESOLVABLE: (
        _row(SignatureStatus.UNRESOLVABLE, unresolvable_reason="unknown_postcode"),
        {},
    ),
    Stage.NO_EMAIL: (
        _row(SignatureStatus.UNRESOLVABLE, unresolvable_reason="no_contact", target_name="Sam"),
        {},
    ),
    Stage.FAILED: (_row(SignatureStatus.FAILED, target_name="Alex Demo"), {}),
    Stage.ERASED: (_row(SignatureStatus.SENT, target_name="Alex Demo", erased=True), {}),
}


def test_every_stage_is_reached_and_has_words() -> None:
    assert set(CASES) == set(Stage) == set(SAYS)
    for stage, (row, extra) in CASES.items():
        assert progress_of(row, fixed_target=None, **extra).stage is stage


@pytest.mark.parametrize("language", ["en", "cy", "fr"])
def test_each_stage_says_its_words_filled_in(language: str) -> None:
    gettext = i18n.translations(language).gettext
    for stage, (row, extra) in CASES.items():
        progress = progress_of(row, fixed_target=None, **extra)
        said = sentences(progress, gettext, language)
        assert said and all(line.strip() for line in said), stage
        assert not any("%(" in line for line in said), (stage, said)
        if language != "en":
            english = sentences(progress, i18n.translations("en").gettext, "en")
            assert not set(said) & set(english), (stage, said)


def test_one_stage_at_a_time() -> None:
    """Looking again stops where nothing will change soon; a waiting letter never "takes
    longer"; a fixed target is named without a constituency."""
    looks = {
        stage
        for stage, (row, extra) in CASES.items()
        if progress_of(row, fixed_target=None, **extra).looks_again
    }
    assert looks == {Stage.FINDING, Stage.GOING}
    fixed = progress_of(_row(SignatureStatus.CONFIRMED), fixed_target="The Home Secretary")
    assert fixed.stage is Stage.GOING
    assert sentences(fixed, i18n.translations("en").gettext, "en") == [
        "Your letter is going to The Home Secretary."
    ]
    sent = progress_of(CASES[Stage.SENT][0], fixed_target=None)
    assert sentences(sent, i18n.translations("en").gettext, "en") == [
        "On 7 December 2026 your letter went to Alex Demo, MP for Aldershot. "
        "We have emailed you a copy."
    ]
    no_email = progress_of(CASES[Stage.NO_EMAIL][0], fixed_target=None)
    assert links_of(no_email, token="t", campaign="c") == [
        ("/thanks/t/letter.pdf", "Your letter, ready to print and post (PDF)")
    ]
    unknown = progress_of(CASES[Stage.UNRESOLVABLE][0], fixed_target=None)
    assert links_of(unknown, token="t", campaign="c")[0][0] == "/c/c"
