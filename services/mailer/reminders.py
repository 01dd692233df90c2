"""One confirmation reminder, ``DEARMP_REMINDER_AFTER_SECONDS`` (24 h) after signing, to
supporters who have not confirmed. A periodic task of ``dearmp serve mailer``.

Exactly once: the reminder is a letters row (signature, "reminder") like any other email, so
``deliver_once`` never sends it twice once sent. Replicas sweeping at the same moment do not both
send it: each takes a short lease on the pending row (in the claim transaction) and only the
holder proceeds. If the sender dies mid-send, the lease runs out and the next sweep resends it
with the same Message-ID (counted in ``letters.sends``), as for any crash after SMTP acceptance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.mailer import compose
from services.mailer.delivery import Outcome, Outgoing, deliver_once
from services.mailer.handlers import MailerDeps
from services.mailer.models import pending_confirmations as pending
from shared.broker.consumer import PermanentFailure, TransientFailure
from shared.logging import get_logger

log = get_logger(__name__)

LEASE = timedelta(minutes=5)
BATCH = 100


def _due(now: datetime) -> sa.Select:  # type: ignore[type-arg]
    return (
        sa.select(pending)
        .where(
            sa.not_(pending.c.confirmed),
            pending.c.reminded_at.is_(None),
            pending.c.due_at <= now,
            sa.or_(pending.c.lease_until.is_(None), pending.c.lease_until < now),
        )
        .order_by(pending.c.due_at)
        .limit(BATCH)
    )


def _take_lease(signature_id: UUID):  # type: ignore[no-untyped-def]
    def may_send(conn: Connection) -> bool:
        now = datetime.now(UTC)
        taken = conn.execute(
            pending.update()
            .where(
                pending.c.signature_id == signature_id,
                sa.not_(pending.c.confirmed),
                pending.c.reminded_at.is_(None),
                sa.or_(pending.c.lease_until.is_(None), pending.c.lease_until < now),
            )
            .values(lease_until=now + LEASE)
            .returning(pending.c.signature_id)
        ).first()
        return taken is not None

    return may_send


def _mark_reminded(signature_id: UUID):  # type: ignore[no-untyped-def]
    def then(conn: Connection, outcome: Outcome) -> None:
        conn.execute(
            pending.update()
            .where(pending.c.signature_id == signature_id)
            .values(reminded_at=datetime.now(UTC), lease_until=None)
        )

    return then


def send_due_reminders(deps: MailerDeps) -> int:
    """Send the reminders that are due; returns how many went out."""
    with deps.engine.connect() as conn:
        rows = conn.execute(_due(datetime.now(UTC))).all()
    sent = 0
    for row in rows:
        try:
            campaign = deps.campaign(row.campaign)
            msg = compose.confirmation(
                row.signature_id,
                campaign,
                row,  # its address and language: the reminder shows nothing the signer typed
                deps.confirm_url(row.signature_id),  # a fresh link: valid 7 days from now
                deps.settings,
                reminder=True,
            )
            outcome = deliver_once(
                deps.branded(
                    Outgoing(
                        row.signature_id,
                        "reminder",
                        row.campaign,
                        msg,
                        row.email,
                        row.supporter_key,
                        signed_at=row.received_at,  # when the signature was made, near enough
                    )
                ),
                engine=deps.engine,
                sender=deps.sender,
                settings=deps.settings,
                correlation_id=str(row.signature_id),
                may_send=_take_lease(row.signature_id),
                then=_mark_reminded(row.signature_id),
            )
        except TransientFailure as exc:  # SMTP away: the lease runs out, the next sweep retries
            log.warning("reminder not sent, will retry", detail=str(exc)[:200])
            break
        except (PermanentFailure, ValueError) as exc:  # never sendable: do not try again
            log.error("reminder cannot be sent", detail=str(exc)[:200])
            with deps.engine.begin() as conn:
                _mark_reminded(row.signature_id)(conn, "failed")
            continue
        sent += outcome == "sent"
    if sent:
        log.info("confirmation reminders sent", count=sent)
    return sent
