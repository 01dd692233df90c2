"""Drafts stay private: a campaign saved in the staff editor but never opened answers every public
page and the API as a campaign that does not exist would (404), until it has been open at least
once. One that was open and is now paused or closed stays visible, as before; a scheduled one is
public from its ``opens_at``.

"Has been open" is read from the campaign's history, ``campaign_versions``, which
``shared.campaigns.save_campaign`` writes with every change: a version was open if
``Campaign.status`` says so at the moment its own window began (when it was saved, or its
``opens_at``) and that moment came before the next version replaced it. A campaign with
signatures has been open whatever its history says (one paused before versions were kept,
migration 0015). Only a campaign that is not open now is looked up, once per stored version in
each process: the hot path (an open campaign) costs nothing more.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.db import IntakeDb
from shared.campaigns import Campaign, get_campaign

# Each version's switch and schedule (the campaign file's own names), when it was saved and when
# the next one replaced it.
_HISTORY = (
    "SELECT definition -> 'open' AS switched_on, definition ->> 'opens_at' AS opens_at, "
    "definition ->> 'closes_at' AS closes_at, saved_at, "
    "LEAD(saved_at) OVER (ORDER BY version) AS replaced_at "
    "FROM campaign_versions WHERE campaign = {slug} ORDER BY version"
)
_SIGNED = "SELECT EXISTS (SELECT 1 FROM signatures WHERE campaign = {slug}) AS signed"
HISTORY, SIGNED = (sa.text(sql.format(slug=":slug")) for sql in (_HISTORY, _SIGNED))
HISTORY_PG, SIGNED_PG = (sql.format(slug="%(slug)s") for sql in (_HISTORY, _SIGNED))

ALWAYS = datetime.min.replace(tzinfo=UTC)

# When each parsed campaign (``shared.campaigns.parse_stored`` keeps one object per stored
# version) became public, None: never open. Keyed by the object, checked by identity: a slug and
# version number alone may name another database's campaign (tests run many in one process).
_opened: dict[int, tuple[weakref.ref[Campaign], datetime | None]] = {}


@dataclass(frozen=True)
class Version:
    switched_on: Any  # the JSON value of "open": False pauses; missing (None) means on
    opens_at: str | None
    closes_at: str | None
    saved_at: datetime
    replaced_at: datetime | None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def opened_from(current: Campaign, history: Iterable[Version], signed: bool) -> datetime | None:
    """The first moment the campaign was (or, scheduled, will be) open, or None if it never
    was. Each version is judged by ``Campaign.status`` (the current definition with that
    version's switch and schedule: old templates need not parse any more)."""
    if signed:
        return ALWAYS
    for version in history:
        then = current.model_copy(
            update={
                "open": version.switched_on is not False,
                "opens_at": _moment(version.opens_at),
                "closes_at": _moment(version.closes_at),
            }
        )
        start = max(version.saved_at, then.opens_at or version.saved_at)
        replaced = version.replaced_at
        if then.status(start) == "open" and (replaced is None or start < replaced):
            return start
    return None


def is_public(campaign: Campaign, opened: datetime | None, now: datetime | None = None) -> bool:
    return campaign.open or (opened is not None and opened <= (now or datetime.now(UTC)))


def _known(campaign: Campaign) -> tuple[bool, datetime | None]:
    hit = _opened.get(id(campaign))
    if hit is not None and hit[0]() is campaign:
        return True, hit[1]
    return False, None


def _remember(campaign: Campaign, opened: datetime | None) -> datetime | None:
    if len(_opened) > 1000:
        _opened.clear()
    _opened[id(campaign)] = (weakref.ref(campaign), opened)
    return opened


def public_campaign(conn: Connection, slug: str) -> Campaign | None:
    """The campaign as the public pages and the API may show it: None when there is no such
    campaign or it has never been open."""
    campaign = get_campaign(conn, slug)
    if campaign is None or campaign.open:
        return campaign
    known, opened = _known(campaign)
    if not known:
        history = [Version(**row._mapping) for row in conn.execute(HISTORY, {"slug": slug})]
        signed = bool(conn.execute(SIGNED, {"slug": slug}).scalar_one())
        opened = _remember(campaign, opened_from(campaign, history, signed))
    return campaign if is_public(campaign, opened) else None


async def public_campaign_async(db: IntakeDb, slug: str) -> Campaign | None:
    """``public_campaign`` for the signing path, on the event loop (the campaign at most
    ``db.CAMPAIGN_TTL`` old)."""
    campaign = await db.campaign(slug)
    if campaign is None or campaign.open:
        return campaign
    known, opened = _known(campaign)
    if not known:
        rows = await db.read_all(HISTORY_PG, {"slug": slug})
        history = [Version(**row._asdict()) for row in rows]
        signed = bool((await db.read_one(SIGNED_PG, {"slug": slug})).signed)
        opened = _remember(campaign, opened_from(campaign, history, signed))
    return campaign if is_public(campaign, opened) else None
