"""What the campaign page shows besides the form: the story, the letter, the updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import jinja2
import sqlalchemy as sa
from markdown_it import MarkdownIt
from sqlalchemy.engine import Connection

from shared.campaigns import Campaign, template_env
from shared.reference import campaign_updates

# CommonMark without raw HTML: staff write markdown, nobody can inject a script.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


@lru_cache(maxsize=256)
def markdown(text: str) -> str:
    return _markdown.render(text or "")


@dataclass(frozen=True)
class LetterPreview:
    subject: str
    body: str


def letter_preview(campaign: Campaign) -> LetterPreview:
    """The letter with its placeholders, as the campaign page shows it."""
    target = campaign.target.name if campaign.target.kind == "fixed" else "[your MP's name]"
    context = {
        "target": {"name": target, "email": "", "party": ""},
        "supporter": {
            "first_name": "[your first name]",
            "last_name": "[your last name]",
            "full_name": "[your name]",
            "comment": "[your own words, if you add them]",
            "address": "[your address]",
            "postcode": "[your postcode]",
            "address_lines": ["[your address]"],
        },
        "campaign": {"title": campaign.title, "slug": campaign.slug},
    }
    env = template_env()
    try:
        return LetterPreview(
            env.from_string(campaign.letter.subject).render(context),
            env.from_string(campaign.letter.body).render(context),
        )
    except jinja2.TemplateError:
        return LetterPreview(campaign.letter.subject, campaign.letter.body)


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
    return [Update(r.number, r.title, markdown(r.body), r.published_at) for r in rows]
