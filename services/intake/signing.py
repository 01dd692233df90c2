"""Signing and confirming: the state changes intake makes, each with its outbox event."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from services.intake import ratelimit
from services.intake.content import default_letter
from services.intake.db import IntakeDb
from services.intake.forms import check_signature
from services.intake.sources import sources_of
from shared import outbox
from shared.campaigns import Campaign
from shared.config import Settings
from shared.messages import (
    Language,
    SignatureConfirmed,
    SignatureReceived,
    SignatureRepeated,
    Supporter,
)
from shared.metrics import SIGNATURES
from shared.states import SignatureStatus
from shared.supporters import normalise_email, supporter_key

# The hot path of a viral petition, as one statement: count the caller's and the email's
# rate-limit hits (the email's only if the caller is under its limit); if both are under their
# limits, store the pending signature with its signature.received event. Signing again with the
# same address replaces a signature that is pending or unresolvable (nothing has gone to the
# target): it takes the new id, so the old confirmation link stops working, and a fresh
# confirmation goes out. A signature that is already confirmed is left as it is, and a
# signature.repeated event (built here from the row, which only the statement sees) tells the
# address's owner where their letter stands. One round trip, one commit.
#
# A race this leaves: a confirmation committed between the statement's snapshot and its upsert
# keeps the signature (the upsert's WHERE sees the confirmed row) but sends no "already signed"
# email for that attempt.
REPLACEABLE = ", ".join(f"'{status}'" for status in sorted(SignatureStatus.replaceable()))
SIGN = f"""
WITH ip AS (
    INSERT INTO rate_limits (key, window_start, hits) VALUES (%(ip_key)s, %(ip_window)s, 1)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
    RETURNING hits
), hit AS (
    INSERT INTO rate_limits (key, window_start, hits)
    SELECT %(email_key)s, %(email_window)s, 1 FROM ip WHERE ip.hits <= %(ip_limit)s
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
    RETURNING hits
), earlier AS (
    SELECT id, status, target_name, sent_at FROM signatures
    WHERE campaign = %(campaign)s AND email_normalised = %(email_normalised)s
), consent AS (
    -- The own-list opt-in of the campaign's organisation, if it offers one and it was ticked:
    -- its words as they are now are stored with the time, as the record of that consent.
    SELECT o.list_opt_in AS wording FROM campaigns c JOIN organisations o ON o.slug = c.organisation
    WHERE %(org_opt_in)s AND c.slug = %(campaign)s AND o.list_opt_in <> ''
), stored AS (
    INSERT INTO signatures (id, campaign, first_name, last_name, email, email_normalised,
                            supporter_key, postcode, address_lines, comment, letter, opt_in,
                            language, status, created_at, org_opt_in_wording, org_opt_in_at,
                            source, utm_source, utm_medium, utm_campaign)
    SELECT %(id)s, %(campaign)s, %(first_name)s, %(last_name)s, %(email)s, %(email_normalised)s,
           %(supporter_key)s, %(postcode)s, CAST(%(address_lines)s AS jsonb), %(comment)s, %(letter)s, %(opt_in)s,
           %(language)s, '{SignatureStatus.PENDING}', %(created_at)s,
           consent.wording, CASE WHEN consent.wording IS NOT NULL THEN %(created_at)s END,
           %(source)s, %(utm_source)s, %(utm_medium)s, %(utm_campaign)s
    FROM hit LEFT JOIN consent ON true WHERE hit.hits <= %(email_limit)s
    ON CONFLICT ON CONSTRAINT uq_signatures_campaign_email DO UPDATE SET
        id = EXCLUDED.id, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
        email = EXCLUDED.email, supporter_key = EXCLUDED.supporter_key,
        postcode = EXCLUDED.postcode,
        address_lines = EXCLUDED.address_lines, comment = EXCLUDED.comment,
        letter = EXCLUDED.letter, opt_in = EXCLUDED.opt_in, language = EXCLUDED.language,
        org_opt_in_wording = EXCLUDED.org_opt_in_wording, org_opt_in_at = EXCLUDED.org_opt_in_at,
        source = EXCLUDED.source, utm_source = EXCLUDED.utm_source,
        utm_medium = EXCLUDED.utm_medium, utm_campaign = EXCLUDED.utm_campaign,
        status = EXCLUDED.status, created_at = EXCLUDED.created_at, confirmed_at = NULL,
        constituency_code = NULL, constituency_name = NULL, target_name = NULL,
        unresolvable_reason = NULL, sent_at = NULL
    WHERE signatures.status IN ({REPLACEABLE})
    RETURNING id
), event AS (
    INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
    SELECT %(event_id)s, %(routing_key)s, %(correlation_id)s, %(body)s, %(created_at)s,
           %(available_at)s
    FROM stored
    RETURNING id
), repeated AS (
    INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
    SELECT %(repeat_event_id)s, '{SignatureRepeated.TYPE}', earlier.id::text,
           convert_to(jsonb_build_object(
               'id', %(repeat_event_id)s::text, 'type', '{SignatureRepeated.TYPE}',
               'version', {SignatureRepeated.VERSION}, 'occurred_at', CAST(%(occurred_at)s AS text),
               'correlation_id', earlier.id::text,
               'payload', jsonb_build_object(
                   'signature_id', earlier.id::text, 'attempt_id', %(id)s::text,
                   'campaign', CAST(%(campaign)s AS text), 'supporter', CAST(%(supporter)s AS jsonb),
                   'status', earlier.status, 'target_name', earlier.target_name,
                   'sent_at', earlier.sent_at)
           )::text, 'UTF8'), %(created_at)s, %(available_at)s
    FROM earlier, hit
    WHERE hit.hits <= %(email_limit)s AND earlier.status NOT IN ({REPLACEABLE})
      AND NOT EXISTS (SELECT 1 FROM stored)
    RETURNING id
)
SELECT (SELECT hits FROM ip), (SELECT hits FROM hit), (SELECT count(*) FROM event)
"""
HIT = (
    "INSERT INTO rate_limits (key, window_start, hits) VALUES (%(key)s, %(window)s, 1) "
    "ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits"
)


def supporter_of(row: Any) -> Supporter:
    return Supporter(
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        postcode=row.postcode,
        address_lines=list(row.address_lines),
        comment=row.comment,
        letter=row.letter,
        opt_in=row.opt_in,
        language=row.language,
        signed_at=row.created_at,
    )


# Confirming, as one statement (``IntakeDb.write``: committed with the confirmations and
# signatures that arrive alongside it): mark the pending signature confirmed and stage
# ``signature.confirmed``, its supporter built from the row as ``supporter_of`` would. A second
# press (or a concurrent one: the UPDATE re-reads the row it waited for) changes nothing and
# emits nothing. Answers (whether the signature exists, whether this press confirmed it).
_SUPPORTER_JSON = """jsonb_build_object(
    'first_name', s.first_name, 'last_name', s.last_name, 'email', s.email,
    'postcode', s.postcode, 'address_lines', s.address_lines, 'comment', s.comment,
    'letter', s.letter, 'opt_in', s.opt_in, 'language', s.language, 'signed_at', s.created_at)"""
CONFIRM = f"""
WITH found AS (
    SELECT id FROM signatures WHERE id = %(id)s
), s AS (
    UPDATE signatures SET status = '{SignatureStatus.CONFIRMED}', confirmed_at = %(now)s
    WHERE id = %(id)s AND status = '{SignatureStatus.PENDING}'
    RETURNING *
), event AS (
    INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
    SELECT %(event_id)s, '{SignatureConfirmed.TYPE}', s.id::text,
           convert_to(jsonb_build_object(
               'id', %(event_id)s::text, 'type', '{SignatureConfirmed.TYPE}',
               'version', {SignatureConfirmed.VERSION}, 'occurred_at', %(occurred_at)s::text,
               'correlation_id', s.id::text,
               'payload', jsonb_build_object(
                   'signature_id', s.id::text, 'campaign', s.campaign,
                   'supporter', {_SUPPORTER_JSON})
                   -- Only when ticked: a consumer still running older code rejects a field
                   -- it does not know, and most signatures do not carry it.
                   || jsonb_strip_nulls(jsonb_build_object('org_opt_in_at', s.org_opt_in_at))
           )::text, 'UTF8'), %(now)s, %(now)s
    FROM s
    RETURNING id
)
SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM event)
"""


async def confirm_signature(db: IntakeDb, signature_id: uuid.UUID) -> bool:
    """Mark a pending signature confirmed and stage ``signature.confirmed``. Confirming twice is
    harmless: the second time changes nothing and emits nothing. False if there is no such
    signature."""
    now = datetime.now(UTC)
    row = await db.write(
        CONFIRM,
        {"id": signature_id, "now": now, "event_id": uuid.uuid4(), "occurred_at": now.isoformat()},
    )
    return bool(row and row[0])


class Outcome(Enum):
    ACCEPTED = "accepted"  # stored (or already signed: the supporter sees the same answer)
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"


@dataclass
class Submission:
    outcome: Outcome
    errors: dict[str, str]


async def submit_signature(
    db: IntakeDb,
    settings: Settings,
    campaign: Campaign,
    data: dict[str, Any],
    client_ip: str,
    *,
    letter_required: bool = False,
    language: Language = "en",
) -> Submission:
    """Everything a signing request does, for the form and the API alike: check the fields,
    then in one statement (``SIGN``, committed with the signatures that arrive alongside it:
    ``IntakeDb.write``) limit the caller and the email address and store the pending signature
    with its event. Fields that fail their checks still count against the
    caller's limit. ``letter_required``: the form showed the letter to edit, so it must not
    come back empty. ``language``: the page's (the form) or the one asked for (the API)."""
    ip_limit = ratelimit.Limit.parse(settings.rate_limit_ip)
    ip_key = ratelimit.limit_key(settings.secret_key, "ip", client_ip)
    checked = check_signature(
        data,
        needs_mp=not campaign.target.fixed,
        letter_default=default_letter(campaign),
        letter_required=letter_required,
        language=language,
    )
    supporter = checked.supporter
    if supporter is None:
        row = await db.write(HIT, {"key": ip_key, "window": ratelimit.window_start(ip_limit)})
        ip_hits, email_hits, stored = (row or (0,))[0], 0, 0
    else:
        email_limit = ratelimit.Limit.parse(settings.rate_limit_email)
        email = normalise_email(supporter.email)
        signature_id = uuid.uuid4()
        signed_at = datetime.now(UTC)
        supporter = supporter.model_copy(update={"signed_at": signed_at})
        event = SignatureReceived(
            signature_id=signature_id, campaign=campaign.slug, supporter=supporter
        )
        row = await db.write(
            SIGN,
            {
                "ip_key": ip_key,
                "ip_window": ratelimit.window_start(ip_limit),
                "ip_limit": ip_limit.count,
                "email_key": ratelimit.limit_key(settings.secret_key, "email", email),
                "email_window": ratelimit.window_start(email_limit),
                "email_limit": email_limit.count,
                "id": signature_id,
                "campaign": campaign.slug,
                "first_name": supporter.first_name,
                "last_name": supporter.last_name,
                "email": supporter.email,
                "email_normalised": email,
                "supporter_key": supporter_key(settings.secret_key, email),
                "postcode": supporter.postcode,
                "address_lines": json.dumps(supporter.address_lines),
                "comment": supporter.comment,
                "letter": supporter.letter,
                "opt_in": supporter.opt_in,
                "org_opt_in": _ticked(data.get("org_opt_in")),
                **sources_of(data),  # where they signed from: plain short tags, else NULL
                "language": supporter.language,
                "supporter": supporter.model_dump_json(),
                "repeat_event_id": uuid.uuid4(),
                "occurred_at": signed_at.isoformat(),
                **outbox.row_for(event, correlation_id=signature_id),
                "created_at": signed_at,  # the signature's, its event's and its signed_at
            },
        )
        ip_hits, email_hits, stored = row or (0, 0, 0)
    if random.random() < ratelimit.SWEEP_CHANCE:
        await db.write(ratelimit.SWEEP_SQL, {"before": ratelimit.sweep_before()})
    if ip_hits > ip_limit.count:
        return Submission(Outcome.RATE_LIMITED, {})
    if supporter is None:
        return Submission(Outcome.INVALID, checked.errors)
    if stored:
        SIGNATURES.labels(campaign.slug).inc()
    if email_hits > ratelimit.Limit.parse(settings.rate_limit_email).count:
        return Submission(Outcome.RATE_LIMITED, {})
    return Submission(Outcome.ACCEPTED, {})


def _ticked(value: Any) -> bool:
    """The organisation's own-list box was ticked (it is never ticked for the supporter)."""
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "y")
