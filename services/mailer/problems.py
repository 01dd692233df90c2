"""Telling an organisation's owners that letters of its campaign could not be written (issue 26):
one email per campaign per hour, not one per signature. A periodic task of ``dearmp serve
mailer``.

A letter that cannot be written for a supporter (handlers.send_letter: the template fails for
their details) is recorded ``failed`` with the reason (delivery.record_unwritten). Every
``SWEEP_SECONDS`` this sweep groups such failures of the last ``LOOK_BACK`` by campaign and by
the hour they happened in, and sends each owner of the campaign's organisation one notice
for each (campaign, hour): how many so far, the latest reason, a link to the failed letters page.
Failures later in an hour already told about wait for the next hour's notice or show in the
staff pages' banner meanwhile.

Exactly once, across replicas: each notice is a ``letters`` row (``uuid5(campaign, hour,
owner)``, "problem_notice") sent by ``deliver_once`` like any email, so it is never sent twice
once sent, and two sweepers at once meet at its claim (the loser sees a live lease and moves on).
Its row names no campaign (``campaign`` is empty): a notice to staff is no email of the
campaign's, in its figures. Staff emails are in English.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import lru_cache

import jinja2
import sqlalchemy as sa
from babel.dates import format_datetime

from services.mailer.compose import LONDON, TEMPLATE_DIR, message_id
from services.mailer.delivery import UNWRITTEN, Outgoing, deliver_once
from services.mailer.handlers import MailerDeps
from services.mailer.models import letters
from services.mailer.reports import unwritten_letters
from shared.broker.consumer import PermanentFailure, TransientFailure
from shared.logging import get_logger
from shared.mail import build_message
from shared.organisations import organisation_of, owner_addresses
from shared.reference import campaigns
from shared.states import LetterState

log = get_logger(__name__)

PURPOSE = "problem_notice"
SWEEP_SECONDS = 30.0
LOOK_BACK = timedelta(hours=24)  # older failures are on the pages; no notice for them now
NOTICES = uuid.UUID("5d0c6f1e-7b7c-4bd4-9d51-2a7a3c6e1f26")


def notice_id(campaign: str, hour: datetime, owner: str) -> uuid.UUID:
    """The notice's own id (its ``letters`` row and Message-ID): one per campaign, hour, owner."""
    return uuid.uuid5(NOTICES, f"{campaign}\n{hour.isoformat()}\n{owner.lower()}")


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def notice(
    once_per: uuid.UUID,
    problem: dict[str, object],
    title: str,
    owner: str,
    hour: datetime,
    deps: MailerDeps,
) -> EmailMessage:
    """The owner's notice: how many letters of the campaign could not be written, why, where."""
    settings = deps.settings
    url = f"{settings.base_url}/admin/letters/failed?campaign={problem['campaign']}"
    text = (
        _templates()
        .get_template("problem_notice.txt")
        .make_module(
            {
                "problem": problem,
                "title": title,
                "url": url,
                "since": _when(hour),
            }
        )
    )
    return build_message(
        from_name="Dear MP",
        from_addr=f"hello@{settings.mail_domain}",
        to_name="",
        to_addr=owner,
        subject=str(text.subject).strip(),  # type: ignore[attr-defined]
        text=str(text),
        message_id=message_id(PURPOSE, once_per, settings),
        headers={"X-DearMP-Campaign": str(problem["campaign"])},
    )


def _when(hour: datetime) -> str:
    """The hour as an organiser in the UK reads it: "14:00 on 8 December 2026"."""
    return format_datetime(hour, "HH:mm 'on' d MMMM y", tzinfo=LONDON, locale="en_GB")


def _by_hour(deps: MailerDeps, since: datetime) -> list[tuple[datetime, dict[str, object]]]:
    """(hour, that hour's failures of a campaign) for every campaign and hour since ``since``."""
    hour = sa.func.date_trunc("hour", letters.c.sent_at, "UTC")
    query = (
        sa.select(letters.c.campaign, hour.label("hour"))
        .where(
            letters.c.state == LetterState.FAILED,
            letters.c.purpose == "letter",
            letters.c.error.startswith(UNWRITTEN, autoescape=True),
            letters.c.sent_at >= since,
        )
        .group_by(letters.c.campaign, hour)
        .order_by(hour)
    )
    out = []
    with deps.engine.connect() as conn:
        for row in conn.execute(query).all():
            start = row.hour.replace(tzinfo=UTC)
            found = unwritten_letters(conn, campaigns=[row.campaign], since=start)
            for problem in found:  # counted from the hour's start: up to now
                out.append((start, problem))
    return out


def _done(deps: MailerDeps, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Of these notices, the ones already sent (or refused for good): not tried again."""
    if not ids:
        return set()
    with deps.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(letters.c.signature_id).where(
                    letters.c.signature_id.in_(ids),
                    letters.c.purpose == PURPOSE,
                    letters.c.state.in_((LetterState.SENT, LetterState.FAILED)),
                )
            ).scalars()
        )


def send_problem_notices(deps: MailerDeps) -> int:
    """Send the notices due; returns how many went out."""
    due: list[tuple[uuid.UUID, dict[str, object], str, str, datetime]] = []
    for hour, problem in _by_hour(deps, datetime.now(UTC) - LOOK_BACK):
        slug = str(problem["campaign"])
        with deps.engine.connect() as conn:
            organisation = organisation_of(conn, slug)
            owners = owner_addresses(conn, organisation) if organisation else []
            title = conn.execute(
                sa.select(campaigns.c.title).where(campaigns.c.slug == slug)
            ).scalar_one_or_none()
        due += [(notice_id(slug, hour, o), problem, title or slug, o, hour) for o in owners]
    done = _done(deps, [once_per for once_per, *_ in due])
    sent = 0
    for once_per, problem, title, owner, hour in due:
        if once_per in done:
            continue
        try:
            msg = notice(once_per, problem, title, owner, hour, deps)
            outcome = deliver_once(
                Outgoing(once_per, PURPOSE, "", msg, owner),
                engine=deps.engine,
                sender=deps.sender,
                settings=deps.settings,
                correlation_id=None,
                held=deps.held,
            )
        except TransientFailure as exc:  # SMTP away, or another sweeper is sending it now
            log.warning("problem notice not sent now", detail=str(exc)[:200])
            continue
        except (PermanentFailure, ValueError) as exc:  # an owner's address that is not one
            log.error("problem notice cannot be built", error=type(exc).__name__)
            continue
        sent += outcome == "sent"
    if sent:
        log.info("problem notices sent to owners", count=sent)
    return sent
