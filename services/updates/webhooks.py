"""Webhook deliveries, recorded from events in the consumer's transaction (``handlers.py``):
one row per (endpoint, event), sent later by ``webhook_sender.py``.

Which events an organisation's endpoints get:

- ``signature.confirmed`` of a supporter who ticked the organisation's own-list opt-in
  (``org_opt_in_at``): who they are, so its CRM can add them;
- ``letter.sent`` for those same signatures: that their letter went (ids and times only). A
  signature that did not opt in to the organisation is never told to its endpoints.

The body is built here, once, and each attempt POSTs the same bytes under the same event id (the
envelope's): a receiver that was down gets it again later; one that got it already can dedupe.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from services.updates.models import webhook_deliveries
from shared.handling import UnitOfWork
from shared.messages import LetterSent, SignatureConfirmed
from shared.organisations import organisation_of
from shared.reference import webhook_endpoints


def body(
    event_id: str, event_type: str, at: datetime, organisation: str, campaign: str, data: Any
) -> bytes:
    """The JSON every endpoint receives: the same envelope for every type, ``data`` its own."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created": at.isoformat(),
            "organisation": organisation,
            "campaign": campaign,
            "data": data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _record(
    conn: Connection,
    *,
    uow: UnitOfWork,
    event_type: str,
    campaign: str,
    signature_id: Any,
    supporter_key: str | None,
    data: dict[str, Any],
) -> int:
    """One delivery per endpoint of the campaign's organisation; returns how many."""
    organisation = organisation_of(conn, campaign)
    if organisation is None:
        return 0
    endpoints = list(
        conn.execute(
            sa.select(webhook_endpoints.c.id).where(
                webhook_endpoints.c.organisation == organisation
            )
        ).scalars()
    )
    if not endpoints:
        return 0
    envelope = uow.envelope
    payload = body(str(envelope.id), event_type, envelope.occurred_at, organisation, campaign, data)
    now = datetime.now(UTC)
    rows = [
        dict(
            endpoint_id=endpoint_id,
            event_id=envelope.id,
            event_type=event_type,
            campaign=campaign,
            signature_id=signature_id,
            supporter_key=supporter_key,
            body=payload,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint_id in endpoints
    ]
    stmt = insert(webhook_deliveries).on_conflict_do_nothing(
        constraint="uq_webhook_deliveries_endpoint_event"
    )
    return conn.execute(stmt, rows).rowcount


def record_confirmed(event: SignatureConfirmed, uow: UnitOfWork) -> int:
    """Deliveries of a confirmed signature that opted in to the organisation's own list."""
    supporter = event.supporter
    return _record(
        uow.conn,
        uow=uow,
        event_type=SignatureConfirmed.TYPE,
        campaign=event.campaign,
        signature_id=event.signature_id,
        supporter_key=uow.deps.key(supporter.email),
        data={
            "signature_id": str(event.signature_id),
            "first_name": supporter.first_name,
            "last_name": supporter.last_name,
            "email": supporter.email,
            "postcode": supporter.postcode,
            "language": supporter.language,
            "signed_at": supporter.signed_at.isoformat() if supporter.signed_at else None,
            "opted_in_at": event.org_opt_in_at.isoformat() if event.org_opt_in_at else None,
        },
    )


# A letter sent, for a signature whose confirmation went to webhooks (that delivery row says the
# campaign and the person), to every endpoint of the campaign's organisation: one statement, its
# body built here (ids and times only, nothing personal), idempotent on its own (one delivery per
# endpoint and event). For every other signature it inserts nothing.
LETTER_SENT = f"""
INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, campaign, signature_id,
                                supporter_key, body, next_attempt_at, created_at)
SELECT e.id, CAST(%(event_id)s AS uuid), '{LetterSent.TYPE}', d.campaign, d.signature_id, d.supporter_key,
       convert_to(json_build_object(
           'id', %(event_id)s::text, 'type', '{LetterSent.TYPE}', 'created', CAST(%(occurred_at)s AS text),
           'organisation', c.organisation, 'campaign', d.campaign,
           'data', json_build_object('signature_id', d.signature_id::text,
                                     'purpose', %(purpose)s::text, 'sent_at', CAST(%(occurred_at)s AS text))
       )::text, 'UTF8'), CAST(%(now)s AS timestamptz), CAST(%(now)s AS timestamptz)
FROM (SELECT campaign, signature_id, supporter_key FROM webhook_deliveries
      WHERE signature_id = %(signature_id)s AND event_type = '{SignatureConfirmed.TYPE}'
      LIMIT 1) d
JOIN campaigns c ON c.slug = d.campaign
JOIN webhook_endpoints e ON e.organisation = c.organisation
ON CONFLICT ON CONSTRAINT uq_webhook_deliveries_endpoint_event DO NOTHING
"""


def record_letter_sent(event: LetterSent, uow: UnitOfWork) -> int:
    """Deliveries of a sent letter (``LETTER_SENT``); returns how many."""
    envelope = uow.envelope
    return uow.conn.exec_driver_sql(
        LETTER_SENT,
        {
            "event_id": envelope.id,
            "occurred_at": envelope.occurred_at.isoformat(),
            "purpose": event.purpose,
            "signature_id": event.signature_id,
            "now": datetime.now(UTC),
        },
    ).rowcount


def forget(conn: Connection, key: str) -> int:
    """An erasure: every delivery about the person goes (pending ones are never sent)."""
    return conn.execute(
        webhook_deliveries.delete().where(webhook_deliveries.c.supporter_key == key)
    ).rowcount
