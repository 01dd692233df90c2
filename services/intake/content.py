"""What the campaign page shows besides the form: the story, the letter, the updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.forms import normalise_letter
from shared.campaigns import MESSAGE_BLOCK, Campaign, template_env
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


def _preview_context(target: str | None, title: str, slug: str) -> dict[str, object]:
    """Placeholders for what we learn only when someone signs. ``target``: a fixed target's name."""
    return {
        "target": {"name": target or "[your MP's name]", "email": "", "party": ""},
        "supporter": {
            "first_name": "[your first name]",
            "last_name": "[your last name]",
            "full_name": "[your name]",
            "comment": "[your own words, if you add them]",
            "address": "[your address]",
            "postcode": "[your postcode]",
            "address_lines": ["[your address]"],
        },
        "campaign": {"title": title, "slug": slug},
    }


def _fixed_target(campaign: Campaign) -> str | None:
    return campaign.target.name if campaign.target.kind == "fixed" else None


def letter_preview(campaign: Campaign) -> LetterPreview:
    """The letter with its placeholders, as the campaign page shows it."""
    context = _preview_context(_fixed_target(campaign), campaign.title, campaign.slug)
    env = template_env()
    try:
        return LetterPreview(
            env.from_string(campaign.letter.subject).render(context),
            env.from_string(campaign.letter.body).render(context),
        )
    except jinja2.TemplateError:
        return LetterPreview(campaign.letter.subject, campaign.letter.body)


def default_letter(campaign: Campaign) -> str | None:
    """The words a supporter may change, as the form first shows them: the letter's message
    block rendered with the preview's placeholders. None when the letter is not editable."""
    if not campaign.letter.editable:
        return None
    return _default_letter(
        campaign.letter.body, _fixed_target(campaign), campaign.title, campaign.slug
    )


@lru_cache(maxsize=256)
def _default_letter(body: str, target: str | None, title: str, slug: str) -> str | None:
    template = template_env().from_string(body)
    block = template.blocks.get(MESSAGE_BLOCK)
    if block is None:
        return None
    try:
        words = "".join(block(template.new_context(_preview_context(target, title, slug))))
    except jinja2.TemplateError:
        return None
    return normalise_letter(words)


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
