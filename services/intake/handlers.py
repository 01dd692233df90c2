"""Intake's event handlers: follow each signature's journey so the supporter can see it.

Each runs in the inbox transaction (see shared.handling), so a redelivered event changes nothing
twice; the updates are also plain overwrites of the same values, harmless if repeated.
"""

from __future__ import annotations

from services.intake.models import signatures
from shared.handling import TransactionalHandler, UnitOfWork
from shared.messages import (
    Event,
    LetterFailed,
    LetterSent,
    SignatureResolved,
    SignatureUnresolvable,
)


def note_resolved(event: SignatureResolved, uow: UnitOfWork) -> None:
    """Consumes signature.resolved: remember the constituency and target for the thank-you page."""
    uow.conn.execute(
        signatures.update()
        .where(signatures.c.id == event.signature_id, signatures.c.status == "confirmed")
        .values(
            status="resolved",
            constituency_code=event.constituency.code if event.constituency else None,
            constituency_name=event.constituency.name if event.constituency else None,
            target_name=event.target.name,
        )
    )


def note_unresolvable(event: SignatureUnresolvable, uow: UnitOfWork) -> None:
    """Consumes signature.unresolvable: record why, so the supporter can be told what to fix."""
    uow.conn.execute(
        signatures.update()
        .where(signatures.c.id == event.signature_id)
        .values(status="unresolvable", unresolvable_reason=event.reason)
    )


def note_letter_sent(event: LetterSent, uow: UnitOfWork) -> None:
    """Consumes letter.sent (purpose "letter"): the letter has gone to the target."""
    if event.purpose == "letter":
        uow.conn.execute(
            signatures.update().where(signatures.c.id == event.signature_id).values(status="sent")
        )


def note_letter_failed(event: LetterFailed, uow: UnitOfWork) -> None:
    """Consumes letter.failed: the letter could not be delivered."""
    if event.purpose == "letter":
        uow.conn.execute(
            signatures.update().where(signatures.c.id == event.signature_id).values(status="failed")
        )


HANDLERS: dict[type[Event], TransactionalHandler] = {
    SignatureResolved: note_resolved,
    SignatureUnresolvable: note_unresolvable,
    LetterSent: note_letter_sent,
    LetterFailed: note_letter_failed,
}
