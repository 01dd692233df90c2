"""Resolver handlers."""

from __future__ import annotations

from datetime import UTC, datetime

from services.resolver.lookup import LocalBackend, resolve
from services.resolver.models import resolutions
from shared.broker.consumer import TransientFailure
from shared.campaigns import get_campaign
from shared.handling import TransactionalHandler, UnitOfWork
from shared.messages import Event, SignatureConfirmed, SignatureResolved, SignatureUnresolvable


def resolve_signature(event: SignatureConfirmed, uow: UnitOfWork) -> None:
    """Consumes signature.confirmed; emits signature.resolved or signature.unresolvable.

    Idempotent: the inbox claim and the ``resolutions`` row (keyed by signature) commit with the
    emitted event, so a redelivery finds the claim and does nothing. A vacant seat raises
    TransientFailure: the signature waits in the retry queues, never dropped.
    """
    campaign = get_campaign(uow.conn, event.campaign)
    answer = resolve(event.supporter.postcode, campaign, [LocalBackend(uow.conn)])
    if answer.status == "retry":
        raise TransientFailure(f"cannot resolve yet: {answer.reason}")
    uow.conn.execute(
        resolutions.insert().values(
            signature_id=event.signature_id,
            campaign=event.campaign,
            status=answer.status,
            reason=answer.reason,
            constituency_code=answer.constituency.code if answer.constituency else None,
            target_name=answer.target.name if answer.target else None,
            resolved_at=datetime.now(UTC),
        )
    )
    if answer.status == "resolved" and answer.target is not None:
        uow.emit(
            SignatureResolved(
                signature_id=event.signature_id,
                campaign=event.campaign,
                supporter=event.supporter,
                constituency=answer.constituency,
                target=answer.target,
            )
        )
    else:
        uow.emit(
            SignatureUnresolvable(
                signature_id=event.signature_id,
                campaign=event.campaign,
                supporter=event.supporter,
                reason=answer.reason or "unknown",
                message=answer.message,
            )
        )


HANDLERS: dict[type[Event], TransactionalHandler] = {SignatureConfirmed: resolve_signature}
