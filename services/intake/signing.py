"""Signing and confirming: the state changes intake makes, each with its outbox event."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.intake import ratelimit
from services.intake.content import default_letter
from services.intake.forms import check_signature
from services.intake.models import signatures
from shared import outbox
from shared.campaigns import Campaign
from shared.config import Settings
from shared.messages import SignatureConfirmed, SignatureReceived, Supporter
from shared.metrics import SIGNATURES
from shared.supporters import normalise_email  # one definition, shared with every service

# The hot path of a viral petition, as one statement: count the email's rate-limit hit, store the
# pending signature if the email is under its limit and has not signed this campaign, and stage
# its signature.received event only if it was stored. One round trip, one commit.
SIGN = sa.text("""
WITH hit AS (
    INSERT INTO rate_limits (key, window_start, hits) VALUES (:email_key, :window, 1)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
    RETURNING hits
), stored AS (
    INSERT INTO signatures (id, campaign, first_name, last_name, email, email_normalised, postcode,
                            address_lines, comment, letter, opt_in, status, created_at)
    SELECT :id, :campaign, :first_name, :last_name, :email, :email_normalised, :postcode,
           CAST(:address_lines AS jsonb), :comment, :letter, :opt_in, 'pending', :created_at
    FROM hit WHERE hit.hits <= :email_limit
    ON CONFLICT ON CONSTRAINT uq_signatures_campaign_email DO NOTHING
    RETURNING id
), event AS (
    INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
    SELECT :event_id, :routing_key, :correlation_id, :body, :created_at, :available_at FROM stored
    RETURNING id
)
SELECT (SELECT hits FROM hit) AS hits, (SELECT count(*) FROM event) AS stored
""")


def record_signature(
    conn: Connection,
    campaign: str,
    supporter: Supporter,
    *,
    email_key: str,
    email_limit: ratelimit.Limit,
) -> tuple[bool, bool]:
    """Store a pending signature and its ``signature.received`` event (see ``SIGN``).
    Returns (allowed by the email's rate limit, stored). Not stored while allowed means this
    person has already signed this campaign: the caller answers exactly as if it was stored."""
    signature_id = uuid.uuid4()
    event = SignatureReceived(signature_id=signature_id, campaign=campaign, supporter=supporter)
    row = conn.execute(
        SIGN,
        {
            "email_key": email_key,
            "window": ratelimit.window_start(email_limit),
            "email_limit": email_limit.count,
            "id": signature_id,
            "campaign": campaign,
            "first_name": supporter.first_name,
            "last_name": supporter.last_name,
            "email": supporter.email,
            "email_normalised": normalise_email(supporter.email),
            "postcode": supporter.postcode,
            "address_lines": json.dumps(supporter.address_lines),
            "comment": supporter.comment,
            "letter": supporter.letter,
            "opt_in": supporter.opt_in,
            **outbox.row_for(event, correlation_id=signature_id),
        },
    ).one()
    return int(row.hits) <= email_limit.count, bool(row.stored)


def supporter_of(row: sa.Row) -> Supporter:  # type: ignore[type-arg]
    return Supporter(
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        postcode=row.postcode,
        address_lines=list(row.address_lines),
        comment=row.comment,
        letter=row.letter,
        opt_in=row.opt_in,
    )


def confirm_signature(conn: Connection, signature_id: uuid.UUID) -> sa.Row | None:  # type: ignore[type-arg]
    """Mark a pending signature confirmed and stage ``signature.confirmed``. Confirming twice is
    harmless: the second time changes nothing and emits nothing. None if there is no such row."""
    row = conn.execute(
        sa.select(signatures).where(signatures.c.id == signature_id).with_for_update()
    ).first()
    if row is None:
        return None
    if row.status == "pending":
        conn.execute(
            signatures.update()
            .where(signatures.c.id == signature_id)
            .values(status="confirmed", confirmed_at=datetime.now(UTC))
        )
        outbox.add(
            conn,
            SignatureConfirmed(
                signature_id=row.id, campaign=row.campaign, supporter=supporter_of(row)
            ),
            correlation_id=row.id,
        )
    return row


class Outcome(Enum):
    ACCEPTED = "accepted"  # stored (or already signed: the supporter sees the same answer)
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"


@dataclass
class Submission:
    outcome: Outcome
    errors: dict[str, str]


def submit_signature(
    engine: Engine,
    settings: Settings,
    campaign: Campaign,
    data: dict[str, Any],
    client_ip: str,
    *,
    letter_required: bool = False,
) -> Submission:
    """Everything a signing request does, for the form and the API alike: limit the caller,
    check the fields, limit the email address, store the pending signature with its event.
    ``letter_required``: the form showed the letter to edit, so it must not come back empty.

    The per-IP hit is its own statement (autocommit, unlogged table), so many supporters behind
    one address never queue behind each other's transactions; the signature, its event and the
    per-email hit commit together: one disk flush per signature."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        allowed = ratelimit.hit(
            conn,
            ratelimit.limit_key(settings.secret_key, "ip", client_ip),
            ratelimit.Limit.parse(settings.rate_limit_ip),
        )
    if not allowed:
        return Submission(Outcome.RATE_LIMITED, {})
    checked = check_signature(
        data,
        needs_mp=campaign.target.kind == "mp",
        letter_default=default_letter(campaign),
        letter_required=letter_required,
    )
    if checked.supporter is None:
        return Submission(Outcome.INVALID, checked.errors)
    supporter = checked.supporter
    email_key = ratelimit.limit_key(settings.secret_key, "email", normalise_email(supporter.email))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        allowed, stored = record_signature(
            conn,
            campaign.slug,
            supporter,
            email_key=email_key,
            email_limit=ratelimit.Limit.parse(settings.rate_limit_email),
        )
    if stored:
        SIGNATURES.labels(campaign.slug).inc()
    return Submission(Outcome.ACCEPTED if allowed else Outcome.RATE_LIMITED, {})
