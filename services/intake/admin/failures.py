"""What went wrong for an organisation, on its own pages (issue 26): the banner on every staff
page ("N letters of <campaign> could not be written: <reason>") and the dead letters that concern
its campaigns.

An organisation's staff see only their campaigns' problems; operators see everyone's. A dead
letter concerns a campaign when its event names it (``payload.campaign``) or is about one of its
signatures (the envelope's ``correlation_id`` is the signature id through the whole journey).
Nothing personal is shown: event ids, types, the error with addresses masked.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pika.exceptions
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.intake.admin.auth import StaffMember
from services.intake.models import signatures
from services.mailer.reports import unwritten_letters
from shared.broker import dlq
from shared.config import Settings
from shared.reference import campaigns
from shared.supporters import mask_addresses
from shared.topology import SERVICES, Topology

BANNER_HOURS = 24  # the banner shows letters that could not be written in the last day
SCANNED = 200  # dead letters read per service for an organisation's page


def _theirs(conn: sa.Connection, member: StaffMember) -> dict[str, str]:
    """{slug: title} of the campaigns the account may see."""
    query = sa.select(campaigns.c.slug, campaigns.c.title)
    if member.organisation is not None:
        query = query.where(campaigns.c.organisation == member.organisation)
    return {row.slug: row.title for row in conn.execute(query)}


def letter_problems(engine: Engine, member: StaffMember | None) -> list[dict[str, Any]]:
    """For the banner: per campaign the account may see, the letters that could not be written
    in the last ``BANNER_HOURS``, the latest reason, and where to see them."""
    if member is None:
        return []
    since = datetime.now(UTC) - timedelta(hours=BANNER_HOURS)
    with engine.connect() as conn:
        titles = _theirs(conn, member)
        if not titles:
            return []
        scope = None if member.organisation is None else list(titles)
        found = unwritten_letters(conn, campaigns=scope, since=since)
    return [
        {**p, "title": titles.get(p["campaign"], p["campaign"])}
        for p in found
        if p["campaign"] in titles
    ]


def _signature_campaigns(engine: Engine, ids: set[str]) -> dict[str, str]:
    """{signature id: its campaign} for the ids that are signatures' (any others: not found)."""
    valid = set()
    for value in ids:
        try:
            valid.add(uuid.UUID(value))
        except ValueError:
            continue
    if not valid:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(signatures.c.id, signatures.c.campaign).where(signatures.c.id.in_(valid))
        )
        return {str(row.id): row.campaign for row in rows}


def dead_letters_of(
    engine: Engine, settings: Settings, member: StaffMember
) -> tuple[list[dict[str, Any]], str | None]:
    """The dead letters (every service's DLQ, the first ``SCANNED`` of each) that concern the
    campaigns the account may see, each with its campaign; and a problem to show if RabbitMQ
    cannot be reached. Replaying them is for operators (/admin/dlq)."""
    with engine.connect() as conn:
        titles = _theirs(conn, member)
    topology = Topology(settings.broker_namespace)
    found: list[tuple[str, dlq.DeadLetter]] = []
    try:
        for service in SERVICES:
            try:
                _depth, letters = dlq.list_dead_letters(
                    settings.amqp_url, topology, service, limit=SCANNED
                )
            except dlq.QueueMissing:
                continue
            found += [(service, letter) for letter in letters]
    except (dlq.BrokerUnavailable, pika.exceptions.AMQPError, OSError) as exc:
        return (
            [],
            f"The dead-letter queues cannot be read ({type(exc).__name__}); try again shortly.",
        )
    about = _signature_campaigns(engine, {d.correlation_id for _s, d in found if d.correlation_id})
    out = []
    for service, letter in found:
        campaign = letter.campaign or about.get(letter.correlation_id or "")
        if campaign is None or campaign not in titles:
            continue  # another organisation's, or one nobody can be told about but operators
        out.append(
            {
                **letter.as_json(),
                "service": service,
                "campaign": campaign,
                "title": titles[campaign],
                "error": mask_addresses(letter.error),
            }
        )
    return out, None
