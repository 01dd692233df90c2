"""Updates handlers: the subscriber list, built only from events, and the start of each fan-out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from services.updates import webhooks
from services.updates.jobs import create_job
from services.updates.models import erased_supporters, subscribers
from shared.config import Settings
from shared.erased import remember
from shared.handling import Dispatcher, Erasure, UnitOfWork, in_transaction, one_statement
from shared.logging import get_logger
from shared.messages import (
    Event,
    LetterSent,
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


def _opted_in(event: SignatureConfirmed) -> bool:
    """To the campaign's updates (the subscriber list) or to its organisation's own list (its
    webhooks): the others are consumed untouched."""
    return event.supporter.opt_in or event.org_opt_in_at is not None


@in_transaction(applies=_opted_in)
def record_subscriber(event: SignatureConfirmed, uow: UnitOfWork) -> None:
    """Consumes signature.confirmed of a supporter who asked to be kept updated (the others are
    consumed untouched); adds them to the campaign's subscribers, and, if they opted in to the
    organisation's own list, records a webhook delivery per endpoint of the organisation
    (``webhooks.py``). The dispatcher refuses it for an erased supporter: the event arrived
    after the request. Idempotent: inbox claim, one row per signature (upsert) and one delivery
    per (endpoint, event)."""
    if event.org_opt_in_at is not None:
        webhooks.record_confirmed(event, uow)
    if not event.supporter.opt_in:
        return
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


@one_statement
def record_letter_sent(event: LetterSent, uow: UnitOfWork) -> None:
    """Consumes letter.sent; if the signature's confirmation went to its organisation's
    webhooks (it opted in to the organisation's own list), records a delivery of the letter's
    sending per endpoint (``webhooks.LETTER_SENT``); otherwise nothing. One statement in
    autocommit, no inbox claim: it stores ids and times only, and is idempotent on its own (one
    delivery per endpoint and event). An erased supporter's confirmation deliveries are gone,
    so nothing is recorded for them."""
    webhooks.record_letter_sent(event, uow)


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
    signature.confirmed adds nothing back, deletes their subscriptions (every campaign) and their
    webhook deliveries (pending ones are never sent) and emits supporter.erased with the
    counts. Idempotent: the inbox claim, and a second run finds nothing to delete."""
    remember(uow.conn, erased_supporters, event.key, uow.envelope.occurred_at)
    gone = uow.conn.execute(
        subscribers.delete().where(subscribers.c.supporter_key == event.key)
    ).rowcount
    hooks = webhooks.forget(uow.conn, event.key)
    uow.emit(
        SupporterErased(
            service=CONSUMER, removed={"subscribers": gone, "webhook_deliveries": hooks}
        )
    )


HANDLERS: dict[type[Event], Callable[..., None]] = {
    SignatureConfirmed: record_subscriber,
    LetterSent: record_letter_sent,
    SubscriptionChanged: change_subscription,
    UpdatePublished: start_fanout,
    SupporterErasureRequested: forget_supporter,
}


def bootstrap(settings: Settings, engine: Engine) -> Dispatcher:
    """The consumer's ``handle(envelope)``: the handlers in the inbox transaction, with the list
    of erased supporters (and the secret that keys it)."""
    erasure = Erasure(erased_supporters, settings.secret_key)
    return Dispatcher(CONSUMER, engine, HANDLERS, deps=erasure, erasure=erasure)
