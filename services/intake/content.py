"""What the campaign page shows besides the form: the story, the letter, the updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.forms import normalise_letter
from shared.campaigns import Campaign
from shared.letters import TemplateProblem, message_words, placeholder_context, render_with
from shared.markdown import render_markdown
from shared.reference import campaign_updates


@lru_cache(maxsize=256)
def markdown(text: str, below: int = 0) -> str:
    """HTML for staff-written markdown. ``below``: the heading level the text sits under, so
    its headings keep the page's order (in an update under an ``h3``, ``#`` becomes ``h4``)."""
    return render_markdown(text, below)


@dataclass(frozen=True)
class LetterPreview:
    subject: str
    body: str


def _target_shown(campaign: Campaign) -> str:
    """A fixed target's name; otherwise a placeholder for the MP we find when someone signs."""
    return campaign.target.name or "" if campaign.target.kind == "fixed" else "[your MP's name]"


def letter_preview(campaign: Campaign) -> LetterPreview | None:
    """The letter with its placeholders, as the campaign page shows it; None when it cannot be
    written (the page then leaves it out, never shows template code). Written once per version
    of the campaign in each process: a page view renders nothing."""
    key = ("preview", *_written_from(campaign))
    if key not in _written:
        try:
            letter = render_with(campaign, placeholder_context(campaign, _target_shown(campaign)))
            _remember(key, LetterPreview(letter.subject, letter.text))
        except TemplateProblem:
            _remember(key, None)
    return _written[key]  # type: ignore[return-value]


def default_letter(campaign: Campaign) -> str | None:
    """The words a supporter may change, as the form first shows them: the letter's message
    block rendered with the preview's placeholders. None when the letter is not editable (or
    its block cannot be written)."""
    if not campaign.letter.editable:
        return None
    key = ("default", *_written_from(campaign))
    if key not in _written:
        try:
            words = message_words(campaign, placeholder_context(campaign, _target_shown(campaign)))
        except TemplateProblem:
            words = None
        _remember(key, None if words is None else normalise_letter(words))
    return _written[key]  # type: ignore[return-value]


# What the page shows of each letter, by everything it is written from (a page view renders
# nothing once its campaign's version has been seen; the editor's unsaved previews too).
_written: dict[tuple[object, ...], LetterPreview | str | None] = {}


def _written_from(campaign: Campaign) -> tuple[object, ...]:
    letter = campaign.letter
    return (
        campaign.slug,
        campaign.title,
        campaign.language,
        campaign.disclosure,
        campaign.target.kind,
        campaign.target.name,
        letter.subject,
        letter.body,
        letter.editable,
    )


def _remember(key: tuple[object, ...], value: LetterPreview | str | None) -> None:
    if len(_written) > 512:
        _written.clear()
    _written[key] = value


@dataclass(frozen=True)
class Update:
    number: int
    title: str
    body_html: str
    published_at: datetime


def updates_for(conn: Connection, slug: str) -> list[Update]:
    rows = conn.execute(
        sa.select(
            campaign_updates.c.number,
            campaign_updates.c.title,
            campaign_updates.c.body,
            campaign_updates.c.published_at,
        )
        .where(campaign_updates.c.campaign == slug)
        .order_by(campaign_updates.c.number.desc())
    ).all()
    # On the page each update's title is an h3 (campaign.html): its own headings go below it.
    return [Update(r.number, r.title, markdown(r.body, 3), r.published_at) for r in rows]
