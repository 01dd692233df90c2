"""Updates handlers: the subscriber list, built only from events, and the start of each fan-out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from services.updates.jobs import create_job
from services.updates.models import erased_supporters, subscribers
from shared.config import Settings
from shared.erased import remember
from shared.handling import Dispatcher, Erasure, UnitOfWork, in_transaction
from shared.logging import get_logger
from shared.messages import (
    Event,
    SignatureConfirmed,
    SubscriptionChanged,
    SupporterErased,
    SupporterErasureRequested,
    UpdatePublished,
)
from shared.reference import campaign_updates
from shared.supporters import normalise_email

log = get_logger(__name__)
CONSUMER = "updates"


@in_transaction(applies=lambda event: event.supporter.opt_in)
def record_subscriber(event: SignatureConfirmed, uow: UnitOfWork) -> None:
    """Consumes signature.confirmed of a supporter who asked to be kept updated (the others are
    consumed untouched); adds them to the campaign's subscribers (the dispatcher refuses it for
    an erased supporter: the event arrived after the request). Idempotent: inbox claim, and one
    row per signature (upsert)."""
    uow.conn.execute(
        insert(subscribers)
        .values(
            campaign=event.campaign,
            signature_id=event.signature_id,
            email=event.supporter.email,
            email_normalised=normalise_email(event.supporter.email),
            first_name=event.supporter.first_name,
            supporter_key=uow.deps.key(event.supporter.email),
            language=event.supporter.language,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[subscribers.c.signature_id])
    )


@in_transaction
def change_subscription(event: SubscriptionChanged, uow: UnitOfWork) -> None:
    """Consumes subscription.changed (from the unsubscribe page or a one-click unsubscribe); sets
    ``subscribed`` on the subscriber's row for this campaign, or on every row with the same
    normalised email (``scope="all"``), and records when they left. Emits nothing. Idempotent:
    the inbox claim, and a row only changes if the event is newer than its last change, so a
    redelivered or late event never undoes a later choice. Fan-outs read ``subscribed`` just
    before each copy goes out, so the change holds for copies not yet sent."""
    at = uow.envelope.occurred_at
    mine = sa.select(subscribers.c.email_normalised).where(
        subscribers.c.signature_id == event.signature_id,
        subscribers.c.campaign == event.campaign,
    )
    if event.scope == "all":
        which = subscribers.c.email_normalised == mine.scalar_subquery()
    else:
        which = sa.and_(
            subscribers.c.signature_id == event.signature_id,
            subscribers.c.campaign == event.campaign,
        )
    changed = uow.conn.execute(
        subscribers.update()
        .where(
            which,
            sa.or_(
                subscribers.c.preference_changed_at.is_(None),
                subscribers.c.preference_changed_at < at,
            ),
        )
        .values(
            subscribed=event.subscribed,
            unsubscribed_at=None if event.subscribed else at,
            preference_changed_at=at,
        )
    ).rowcount
    log.info(
        "subscription changed",
        scope=event.scope,
        subscribed=event.subscribed,
        rows=changed,
        campaign=event.campaign,
    )


@in_transaction
def start_fanout(event: UpdatePublished, uow: UnitOfWork) -> None:
    """Consumes update.published; if staff asked for the update to be emailed, records its
    fan-out job, which the worker's fan-out task then sends (``fanout.py``). Emits nothing.
    Idempotent: the inbox claim, and one job per (campaign, update number)."""
    emailed = uow.conn.execute(
        sa.select(campaign_updates.c.emailed).where(
            campaign_updates.c.campaign == event.campaign,
            campaign_updates.c.number == event.update_number,
        )
    ).scalar()
    if not emailed:
        log.info("update not to be emailed", campaign=event.campaign, update=event.update_number)
        return
    created = create_job(uow.conn, event.campaign, event.update_number)
    log.info(
        "fan-out recorded" if created else "fan-out already recorded",
        campaign=event.campaign,
        update=event.update_number,
    )


@in_transaction
def forget_supporter(event: SupporterErasureRequested, uow: UnitOfWork) -> None:
    """Consumes supporter.erasure_requested; remembers the supporter (by keyed hash) so a late
    signature.confirmed adds nothing back, deletes their subscriptions (every campaign) and emits
    supporter.erased with the count. Idempotent: the inbox claim, and a second run finds nothing
    to delete."""
    remember(uow.conn, erased_supporters, event.key, uow.envelope.occurred_at)
    gone = uow.conn.execute(
        subscribers.delete().where(subscribers.c.supporter_key == event.key)
    ).rowcount
    uow.emit(SupporterErased(service=CONSUMER, removed={"subscribers": gone}))


HANDLERS: dict[type[Event], Callable[..., None]] = {
    SignatureConfirmed: record_subscriber,
    SubscriptionChanged: change_subscription,
    UpdatePublished: start_fanout,
    SupporterErasureRequested: forget_supporter,
}


def bootstrap(settings: Settings, engine: Engine) -> Dispatcher:
    """The consumer's ``handle(envelope)``: the handlers in the inbox transaction, with the list
    of erased supporters (and the secret that keys it)."""
    erasure = Erasure(erased_supporters, settings.secret_key)
    return Dispatcher(CONSUMER, engine, HANDLERS, deps=erasure, erasure=erasure)
