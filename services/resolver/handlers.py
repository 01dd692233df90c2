"""Resolver handlers: a confirmed signature becomes ``signature.resolved`` or
``signature.unresolvable``; a vacant seat holds it until there is an MP.

Look-ups (which may call remote APIs) happen outside any transaction; the effect (a
``resolutions`` row or a held signature, and the emitted event) commits in one transaction with
the inbox claim, so a redelivered event changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from services.resolver.backends import make_backends
from services.resolver.lookup import Backend, Resolution, Unavailable, resolve
from services.resolver.models import erased_supporters, held_signatures, resolutions
from shared import outbox
from shared.broker.consumer import TransientFailure
from shared.campaigns import Campaign, CampaignCache
from shared.config import Settings
from shared.erased import remember
from shared.handling import Dispatcher, Effect, Erasure, UnitOfWork, external_effect, in_transaction
from shared.inbox import CLAIM_CALL
from shared.logging import get_logger
from shared.messages import (
    Envelope,
    Event,
    SignatureConfirmed,
    SignatureHeld,
    SignatureResolved,
    SignatureUnresolvable,
    SupporterErased,
    SupporterErasureRequested,
)
from shared.supporters import supporter_key

log = get_logger(__name__)
CONSUMER = "resolver"


@dataclass
class ResolverDeps:
    engine: Engine
    backends: list[Backend]
    hold_for: timedelta
    secret_key: str
    campaigns: CampaignCache = field(init=False)  # re-read every few seconds, not every event

    def __post_init__(self) -> None:
        self.campaigns = CampaignCache(self.engine)

    def campaign(self, slug: str) -> Campaign | None:
        return self.campaigns.get(slug)

    def key(self, email: str) -> str:
        return supporter_key(self.secret_key, email)


def record_answer(
    conn: Connection, event: SignatureConfirmed, answer: Resolution, correlation_id: str | None
) -> None:
    """Store the answer and emit its event, in the caller's transaction."""
    conn.execute(
        insert(resolutions)
        .values(**_resolution(event, answer))
        .on_conflict_do_nothing(index_elements=[resolutions.c.signature_id])
    )
    outbox.add(conn, _answer_event(event, answer), correlation_id=correlation_id)


# The hot path's record, one autocommit statement (``Effect.record_in_one``): claim the event
# (and check the erased list), then store the answer and stage its event, only if claimed.
RECORD = f"""
WITH claim AS (SELECT {CLAIM_CALL} AS outcome), answer AS (
    INSERT INTO resolutions (signature_id, campaign, status, reason, constituency_code,
                             target_name, resolved_at)
    SELECT %(signature_id)s, %(campaign)s, %(status)s, %(reason)s, %(constituency_code)s,
           %(target_name)s, %(resolved_at)s
    FROM claim WHERE outcome = 'claimed'
    ON CONFLICT (signature_id) DO NOTHING
), event AS (
    INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
    SELECT %(event_id)s, %(routing_key)s, %(correlation_id)s, %(body)s, %(created_at)s,
           %(available_at)s
    FROM claim WHERE outcome = 'claimed'
)
SELECT outcome FROM claim
"""


def _resolution(event: SignatureConfirmed, answer: Resolution) -> dict[str, object]:
    return dict(
        signature_id=event.signature_id,
        campaign=event.campaign,
        status=answer.status,
        reason=answer.reason,
        constituency_code=answer.constituency.code if answer.constituency else None,
        target_name=answer.target.name if answer.target else None,
        resolved_at=datetime.now(UTC),
    )


def _answer_event(event: SignatureConfirmed, answer: Resolution) -> Event:
    if answer.status == "resolved" and answer.target is not None:
        return SignatureResolved(
            signature_id=event.signature_id,
            campaign=event.campaign,
            supporter=event.supporter,
            constituency=answer.constituency,
            target=answer.target,
        )
    # An MP with no published email (``no_contact``): their name and seat go with the answer,
    # so the supporter is told whom to post the letter to.
    return SignatureUnresolvable(
        signature_id=event.signature_id,
        campaign=event.campaign,
        supporter=event.supporter,
        reason=answer.reason or "unknown",
        message=answer.message,
        constituency=answer.constituency if answer.target else None,
        target_name=answer.target.name if answer.target else None,
    )


def answer_for(
    event: SignatureConfirmed, deps: ResolverDeps, campaign: Campaign | None = None
) -> Resolution:
    if campaign is None:
        campaign = deps.campaign(event.campaign)
    try:
        return resolve(event.supporter.postcode, campaign, deps.backends)
    except Unavailable as exc:
        # Every backend that could answer is down: wait and retry, without using up attempts.
        raise TransientFailure(
            f"resolver backends unavailable: {exc}", retry_after=exc.retry_after
        ) from None


@external_effect
def resolve_signature(event: SignatureConfirmed, effect: Effect) -> None:
    """Consumes signature.confirmed; emits signature.resolved or signature.unresolvable, or holds
    the signature while the seat is vacant. The look-up (maybe remote) runs outside any
    transaction; the answer is recorded with the inbox claim, so a redelivered event changes
    nothing twice. A supporter erased before the event arrived is not looked up (the dispatcher's
    check), and nothing is stored or emitted for one erased during the look-up (``record``)."""
    deps: ResolverDeps = effect.deps
    answer = answer_for(event, deps)
    if answer.status != "retry":
        emitted = _answer_event(event, answer)
        row = outbox.row_for(emitted, correlation_id=effect.envelope.correlation_id)
        effect.record_in_one(RECORD, {**_resolution(event, answer), **row})
        return
    with effect.record() as uow:
        if uow is None:
            return
        now = datetime.now(UTC)
        held = uow.conn.execute(
            insert(held_signatures)
            .values(
                signature_id=event.signature_id,
                envelope=effect.envelope.model_dump(mode="json"),
                reason=answer.reason or "retry",
                constituency_code=answer.constituency.code if answer.constituency else None,
                held_at=now,
                next_attempt_at=now + deps.hold_for,
            )
            .on_conflict_do_nothing(index_elements=[held_signatures.c.signature_id])
        ).rowcount
        if held:  # the first time only: the supporter is told once
            uow.emit(
                SignatureHeld(
                    signature_id=event.signature_id,
                    campaign=event.campaign,
                    supporter=event.supporter,
                    reason=answer.reason or "retry",
                    constituency=answer.constituency,
                )
            )
        log.info("signature held", reason=answer.reason)


def retry_held(deps: ResolverDeps, batch: int = 50) -> int:
    """Try the held signatures that are due again; returns how many were released."""
    now = datetime.now(UTC)
    released = 0
    with deps.engine.begin() as conn:
        rows = conn.execute(
            sa.select(held_signatures)
            .where(held_signatures.c.next_attempt_at <= now)
            .order_by(held_signatures.c.next_attempt_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            envelope = Envelope.model_validate(row.envelope)
            event = envelope.event()
            assert isinstance(event, SignatureConfirmed)
            try:
                answer = answer_for(event, deps)
            except TransientFailure:
                answer = Resolution("retry", event.supporter.postcode, reason="unavailable")
            if answer.status == "retry":
                conn.execute(
                    held_signatures.update()
                    .where(held_signatures.c.signature_id == row.signature_id)
                    .values(
                        attempts=held_signatures.c.attempts + 1, next_attempt_at=now + deps.hold_for
                    )
                )
                continue
            record_answer(conn, event, answer, envelope.correlation_id)
            conn.execute(
                held_signatures.delete().where(held_signatures.c.signature_id == row.signature_id)
            )
            released += 1
    if released:
        log.info("held signatures released", count=released)
    return released


@in_transaction
def forget_supporter(event: SupporterErasureRequested, uow: UnitOfWork) -> None:
    """Consumes supporter.erasure_requested; remembers the supporter (by keyed hash) so a late
    signature.confirmed is not resolved, deletes their held signatures (their envelopes carry the
    supporter's details; the letter will not be sent) and emits supporter.erased with the count.
    ``resolutions`` hold no personal data. Idempotent: the inbox claim, and a second run finds
    nothing to delete."""
    deps: ResolverDeps = uow.deps
    remember(uow.conn, erased_supporters, event.key, uow.envelope.occurred_at)
    email = held_signatures.c.envelope[("payload", "supporter", "email")].astext
    rows = uow.conn.execute(sa.select(held_signatures.c.signature_id, email)).all()
    theirs = [row[0] for row in rows if deps.key(row[1] or "") == event.key]  # few: vacant seats
    held = 0
    if theirs:
        held = uow.conn.execute(
            held_signatures.delete().where(held_signatures.c.signature_id.in_(theirs))
        ).rowcount
    uow.emit(SupporterErased(service=CONSUMER, removed={"held_signatures": held}))


HANDLERS: dict[type[Event], Callable[..., None]] = {
    SignatureConfirmed: resolve_signature,
    SupporterErasureRequested: forget_supporter,
}


def make_deps(settings: Settings, engine: Engine) -> ResolverDeps:
    return ResolverDeps(
        engine=engine,
        backends=make_backends(
            settings.resolver_backends,
            engine,
            postcodes_io_url=settings.postcodes_io_url,
            members_api_url=settings.members_api_url,
            dissolved_from=settings.dissolved_from,
        ),
        hold_for=timedelta(seconds=settings.vacant_retry_seconds),
        secret_key=settings.secret_key,
    )


def bootstrap(settings: Settings, engine: Engine) -> Dispatcher:
    """Wire real backends into the handlers; one call per consumer thread (own HTTP session)."""
    deps = make_deps(settings, engine)
    return Dispatcher(
        CONSUMER, engine, HANDLERS, deps, Erasure(erased_supporters, settings.secret_key)
    )
