"""Intake's event handlers: follow each signature's journey so the supporter can see it.

The journey's handlers are one statement each (``@one_statement``, see shared.handling): plain
overwrites with the event's values, or updates guarded by the state they move from, so a
redelivered event repeats a statement to no effect, and they store no personal data; they run
without an inbox claim. The erasure handlers run in the inbox transaction.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from services.intake.models import help_requests, reply_answers, signatures
from shared.handling import UnitOfWork, in_transaction, one_statement
from shared.logging import get_logger
from shared.messages import (
    Event,
    LetterFailed,
    LetterSent,
    SignatureHeld,
    SignatureResolved,
    SignatureUnresolvable,
    SupporterErased,
    SupporterErasureRequested,
)
from shared.states import SignatureStatus

log = get_logger(__name__)


@one_statement
def note_resolved(event: SignatureResolved, uow: UnitOfWork) -> None:
    """Consumes signature.resolved: remember the constituency and target for the thank-you page."""
    uow.conn.execute(
        signatures.update()
        .where(
            signatures.c.id == event.signature_id,
            signatures.c.status.in_((SignatureStatus.CONFIRMED, SignatureStatus.HELD)),
        )
        .values(
            status=SignatureStatus.RESOLVED,
            constituency_code=event.constituency.code if event.constituency else None,
            constituency_name=event.constituency.name if event.constituency else None,
            target_name=event.target.name,
        )
    )


@one_statement
def note_unresolvable(event: SignatureUnresolvable, uow: UnitOfWork) -> None:
    """Consumes signature.unresolvable: record why, so the supporter can be told what to fix,
    and, for an MP with no published email, whom and which seat (the thank-you page and the
    printable letter, ``printable.py``, name them)."""
    uow.conn.execute(
        signatures.update()
        .where(signatures.c.id == event.signature_id)
        .values(
            status=SignatureStatus.UNRESOLVABLE,
            unresolvable_reason=event.reason,
            constituency_code=event.constituency.code if event.constituency else None,
            constituency_name=event.constituency.name if event.constituency else None,
            target_name=event.target_name,
        )
    )


@one_statement
def note_held(event: SignatureHeld, uow: UnitOfWork) -> None:
    """Consumes signature.held: the seat is vacant, the letter waits (the thank-you page says so)."""
    uow.conn.execute(
        signatures.update()
        .where(
            signatures.c.id == event.signature_id, signatures.c.status == SignatureStatus.CONFIRMED
        )
        .values(
            status=SignatureStatus.HELD,
            constituency_code=event.constituency.code if event.constituency else None,
            constituency_name=event.constituency.name if event.constituency else None,
        )
    )


def _letter_is(
    uow: UnitOfWork, event: LetterSent | LetterFailed, status: SignatureStatus, **values: object
) -> None:
    uow.conn.execute(
        signatures.update()
        .where(signatures.c.id == event.signature_id)
        .values(status=status, **values)
    )


def _the_letter(event: LetterSent | LetterFailed) -> bool:
    """The letter to the target, not the confirmation, copy or a notice: only it moves the
    signature on (the others are consumed untouched)."""
    return event.purpose == "letter"


@one_statement(applies=_the_letter)
def note_letter_sent(event: LetterSent, uow: UnitOfWork) -> None:
    """Consumes letter.sent (purpose "letter"): the letter has gone to the target, at the time
    the event was made (when the mail server took it)."""
    _letter_is(uow, event, SignatureStatus.SENT, sent_at=uow.envelope.occurred_at)


@one_statement(applies=_the_letter)
def note_letter_failed(event: LetterFailed, uow: UnitOfWork) -> None:
    """Consumes letter.failed (purpose "letter"): the target's server refused it for good, or
    the letter could never be written for this supporter (the mailer's ``letters`` row keeps
    the reason: the failed-letters page and the staff banner show it, through
    ``services.mailer.reports``)."""
    _letter_is(uow, event, SignatureStatus.FAILED)


@in_transaction
def forget_supporter(event: SupporterErasureRequested, uow: UnitOfWork) -> None:
    """Consumes supporter.erasure_requested; replaces the supporter's names, email, address,
    comment and own wording of the letter on the signatures they made before asking (the
    signature still counts; a pending one can no longer be confirmed; one made since is theirs to
    keep) and deletes their help requests; emits supporter.erased with the counts. Idempotent:
    the inbox claim, and a second run finds no such row with that email."""
    # A reply to their letter they pasted ("Did your MP reply?") goes; the answer stays.
    uow.conn.execute(
        reply_answers.update()
        .where(
            reply_answers.c.signature_id.in_(
                sa.select(signatures.c.id).where(signatures.c.supporter_key == event.key)
            ),
            reply_answers.c.reply_text.is_not(None),
        )
        .values(reply_text=None, share_reply=False, reply_pasted_at=None)
    )
    placeholder = sa.literal("erased-") + sa.cast(signatures.c.id, sa.Text) + "@erased.invalid"
    scrubbed = uow.conn.execute(
        signatures.update()
        .where(
            signatures.c.supporter_key == event.key,
            signatures.c.created_at <= uow.envelope.occurred_at,
        )
        .values(
            first_name="[erased]",
            last_name="",
            email=placeholder,
            email_normalised=placeholder,
            postcode="",
            address_lines=[],
            comment="",
            letter="",
            opt_in=False,
            org_opt_in_wording=None,
            org_opt_in_at=None,
            source=None,
            utm_source=None,
            utm_medium=None,
            utm_campaign=None,
            supporter_key=None,
            status=sa.case(
                (signatures.c.status == SignatureStatus.PENDING, SignatureStatus.ERASED.value),
                else_=signatures.c.status,
            ),
        )
    ).rowcount
    helped = uow.conn.execute(
        help_requests.delete().where(help_requests.c.supporter_key == event.key)
    ).rowcount
    uow.emit(
        SupporterErased(service="intake", removed={"signatures": scrubbed, "help_requests": helped})
    )


@in_transaction
def note_erasure(event: SupporterErased, uow: UnitOfWork) -> None:
    """Consumes supporter.erased: the audit trail of an erasure request, one line per service
    (its counts and the request id, never the address). Idempotent: the inbox claim."""
    log.info(
        "erasure done by a service",
        service=event.service,
        removed=event.removed,
        request_id=uow.envelope.correlation_id,
    )


HANDLERS: dict[type[Event], Callable[..., None]] = {
    SignatureResolved: note_resolved,
    SignatureUnresolvable: note_unresolvable,
    SignatureHeld: note_held,
    LetterSent: note_letter_sent,
    LetterFailed: note_letter_failed,
    SupporterErasureRequested: forget_supporter,
    SupporterErased: note_erasure,
}
