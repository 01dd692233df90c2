"""How a signature's letter is getting on, as its thank-you page says it: one state machine.

``progress_of`` maps what intake knows of a signature (its row) and what the mailer says of its
letter (``services.mailer.reports.letter_waiting``) to exactly one ``Stage``; ``SAYS`` holds the
words of each stage, and ``sentences`` puts them in the page's language. The server-rendered page
and its refresh (``static/thanks.js`` fetches the same page and swaps its status) both come
from here, so no page can say two stages at once ("is going to" beside "was sent", "taking
longer" beside "in the digest for Monday").

A new stage: add it to ``Stage``, give it its words in ``SAYS`` (and its link in ``links_of``
if it has one), and decide it in ``progress_of``; tests/e2e/test_thank_you_states.py shows
every stage in every language, in a browser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from shared.dates import long_date
from shared.i18n_markers import N_
from shared.reasons import POSTCODE_REASONS, REASONS
from shared.states import SignatureStatus

LOOKS = 12  # a minute at one look every 5 s: then "taking longer", and no more looking


class Stage(StrEnum):
    PENDING = "pending"  # not confirmed yet
    FINDING = "finding"  # confirmed; the MP is being found
    GOING = "going"  # the target is known; the letter is on its way
    TAKING_LONGER = "taking_longer"  # finding or going, after a minute of looking
    DIGEST = "digest"  # waits in the MP's digest for its day (a digest campaign)
    SCHEDULED = "scheduled"  # waits for a later day (the MP's daily cap)
    SENT = "sent"  # the target's mail server took it
    HELD = "held"  # the seat is vacant: it waits for the new MP
    HELD_UNNAMED = "held_unnamed"  # the same, the constituency not named
    UNRESOLVABLE = "unresolvable"  # no target for this postcode (the reason follows)
    NO_EMAIL = "no_email"  # the MP publishes no email address: post it
    FAILED = "failed"  # the target's mail server refused it for good
    ERASED = "erased"  # the supporter's data was erased: nothing else is said


# What each stage says: one statement (a paragraph each), never two stages' words together.
SAYS: dict[Stage, tuple[str, ...]] = {
    Stage.PENDING: (N_("Press the button in the email we sent you to confirm your signature."),),
    Stage.FINDING: (N_("We are finding your MP. This page will update in a moment."),),
    Stage.GOING: (N_("Your letter is going to %(target)s."),),
    Stage.TAKING_LONGER: (
        N_(
            "This is taking longer than usual. We will email you a copy of your letter when it "
            "has gone."
        ),
    ),
    Stage.DIGEST: (
        N_(
            "Your letter is in the digest for %(day)s: so as not to fill their inbox, each MP "
            "gets one email a day listing every constituent who wrote. Once that day is over it "
            "goes to %(target)s. We have emailed you a copy."
        ),
    ),
    Stage.SCHEDULED: (
        N_(
            "So that an MP's office is not flooded, we send each MP only so many letters a day: "
            "yours goes on %(day)s to %(target)s. We have emailed you a copy."
        ),
    ),
    Stage.SENT: (N_("On %(date)s your letter went to %(target)s. We have emailed you a copy."),),
    Stage.HELD: (
        N_("%(constituency)s has no MP at the moment: the seat is vacant until a by-election."),
        N_(
            "Your letter is waiting, and we will send it to the new MP once they are elected. We "
            "will email you a copy then. You do not need to do anything."
        ),
    ),
    Stage.HELD_UNNAMED: (
        N_("Your constituency has no MP at the moment: the seat is vacant until a by-election."),
        N_(
            "Your letter is waiting, and we will send it to the new MP once they are elected. We "
            "will email you a copy then. You do not need to do anything."
        ),
    ),
    Stage.UNRESOLVABLE: (N_("We could not send your letter."),),  # then the reason, if known
    Stage.NO_EMAIL: (
        N_(
            "Your MP, %(target)s (%(constituency)s), publishes no email address: you can post "
            "your letter."
        ),
    ),
    Stage.FAILED: (
        N_("We could not deliver your letter. Our team has been told and will look into it."),
    ),
    Stage.ERASED: (N_("The personal details it held were removed, as was asked."),),
}
# The links a stage may offer (``links_of``).
SIGN_AGAIN = N_("Sign again with your current postcode")
PRINT_LETTER = N_("Your letter, ready to print and post (PDF)")
MP_FOR = N_("%(target)s, MP for %(constituency)s")  # the target, when it is the supporter's MP


class Waiting(Protocol):
    """A letter the mailer holds for its day (``services.mailer.reports.letter_waiting``)."""

    @property
    def day(self) -> date: ...

    @property
    def digest(self) -> bool: ...


@dataclass(frozen=True)
class Progress:
    """One stage and what its words need."""

    stage: Stage
    target: str = ""
    constituency: str = ""
    day: date | None = None  # the day a waiting letter goes (DIGEST, SCHEDULED)
    sent_at: datetime | None = None  # SENT
    reason: str = ""  # UNRESOLVABLE: a key of shared.reasons.REASONS
    sign_again: bool = False  # UNRESOLVABLE: a new postcode would help
    looks_again: bool = False  # the page looks again (thanks.js, or "Check again")

    @property
    def says(self) -> tuple[str, ...]:
        return SAYS[self.stage]


def progress_of(
    row: Any, *, fixed_target: str | None, waiting: Waiting | None = None, looked: int = 0
) -> Progress:
    """The one stage a thank-you page shows. ``row``: the signature's ``status``,
    ``target_name``, ``constituency_name``, ``unresolvable_reason``, ``sent_at``,
    ``confirmed_at`` and ``erased`` (its supporter's data is gone); ``fixed_target``: the
    campaign's fixed target, if any; ``waiting``: the mailer's ``letter_waiting`` for it (a
    ``day`` and whether it is a ``digest``), or None; ``looked``: how many times the page has
    looked again."""
    status = SignatureStatus(row.status)
    if row.erased or status is SignatureStatus.ERASED:
        return Progress(Stage.ERASED)
    if status is SignatureStatus.PENDING:
        return Progress(Stage.PENDING)
    target = row.target_name or fixed_target or ""
    constituency = row.constituency_name or ""
    # The MP's constituency is named with them; a fixed target (the Home Secretary) alone.
    place = "" if fixed_target else constituency
    if status is SignatureStatus.SENT:
        # sent_at is missing only on rows older than migration 0011 (their links expired long
        # ago): the day it was confirmed stands in.
        return Progress(Stage.SENT, target, place, sent_at=row.sent_at or row.confirmed_at)
    if status is SignatureStatus.FAILED:
        return Progress(Stage.FAILED)
    if status is SignatureStatus.HELD:
        return Progress(Stage.HELD if constituency else Stage.HELD_UNNAMED, "", constituency)
    if status is SignatureStatus.UNRESOLVABLE:
        reason = row.unresolvable_reason or ""
        if reason == "no_contact" and row.target_name:
            return Progress(Stage.NO_EMAIL, row.target_name, constituency)
        return Progress(Stage.UNRESOLVABLE, reason=reason, sign_again=reason in POSTCODE_REASONS)
    if waiting is not None:  # resolved; the mailer holds the letter for its day
        return Progress(
            Stage.DIGEST if waiting.digest else Stage.SCHEDULED, target, place, waiting.day
        )
    if looked >= LOOKS:
        return Progress(Stage.TAKING_LONGER)
    if target:
        return Progress(Stage.GOING, target, place, looks_again=True)
    return Progress(Stage.FINDING, looks_again=True)


def links_of(progress: Progress, *, token: str, campaign: str) -> list[tuple[str, str]]:
    """The links a stage offers, (address, words to translate): "sign again" where a new
    postcode would help; the printable letter for an MP with no email address (the page under
    the thank-you page's own token)."""
    if progress.sign_again:
        return [(f"/c/{campaign}", SIGN_AGAIN)]
    if progress.stage is Stage.NO_EMAIL:
        return [(f"/thanks/{token}/letter.pdf", PRINT_LETTER)]
    return []


def sentences(progress: Progress, gettext: Callable[[str], str], language: str) -> list[str]:
    """The stage's words in the page's language (plain text: the page escapes them)."""
    target = progress.target
    if progress.constituency and progress.stage is not Stage.NO_EMAIL and target:
        target = gettext(MP_FOR) % {"target": target, "constituency": progress.constituency}
    values = {
        "target": target,
        "constituency": progress.constituency,
        "day": long_date(progress.day, language) if progress.day else "",
        "date": long_date(progress.sent_at, language) if progress.sent_at else "",
    }
    said = [gettext(line) % values for line in progress.says]
    # A reason this intake has no words for: only "we could not send" (never gettext("")).
    if progress.reason in REASONS:
        said.append(gettext(REASONS[progress.reason]))
    return said
