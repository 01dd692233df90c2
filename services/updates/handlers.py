"""Updates handlers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert

from services.updates.models import subscribers
from shared.handling import TransactionalHandler, UnitOfWork
from shared.messages import Event, SignatureConfirmed


def record_subscriber(event: SignatureConfirmed, uow: UnitOfWork) -> None:
    """Consumes signature.confirmed; adds the supporter to the campaign's subscribers if they
    asked to be kept updated. Idempotent: inbox claim, and one row per signature (upsert)."""
    if not event.supporter.opt_in:
        return
    uow.conn.execute(
        insert(subscribers)
        .values(
            campaign=event.campaign,
            signature_id=event.signature_id,
            email=event.supporter.email,
            first_name=event.supporter.first_name,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[subscribers.c.signature_id])
    )


HANDLERS: dict[type[Event], TransactionalHandler] = {SignatureConfirmed: record_subscriber}
