"""Updates handlers: the subscriber list, built only from events, and the start of each fan-out."""

from __future__ import annotations

import uuid
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


@in_transaction
def record_subscriber(event: SignatureConfirmed, uow: UnitOfWork) -> None:
    """Consumes signature.confirmed. A supporter who asked to be kept updated is added to the
    campaign's subscribers: one row per person and campaign (their normalised address). When
    they sign again (intake replaced an unresolvable signature: a corrected postcode), the new
    signature's confirmation takes their row over (``_follow_newest_signature``), so they get
    each update once, and what they chose this time holds: ticked, they are subscribed;
    unticked, they have left (the row stays, so "come back" still works). If they opted in to
    the organisation's own list, it also records a webhook delivery per endpoint of the
    organisation (``webhooks.py``). The dispatcher refuses it for an erased supporter: the event
    arrived after the request. Idempotent: inbox claim, one row per person and campaign (an
    insert that does nothing on conflict, an update only from an older signature to a newer
    one) and one delivery per (endpoint, event)."""
    if event.org_opt_in_at is not None:
        webhooks.record_confirmed(event, uow)
    signed_at = event.supporter.signed_at or uow.envelope.occurred_at
    if event.supporter.opt_in:
        added = uow.conn.execute(
            insert(subscribers)
            .values(
                campaign=event.campaign,
                signature_id=event.signature_id,
                email=event.supporter.email,
                email_normalised=normalise_email(event.supporter.email),
                first_name=event.supporter.first_name,
                supporter_key=uow.deps.key(event.supporter.email),
                language=event.supporter.language,
                signed_at=signed_at,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing()  # their row for this campaign (or this very signature)
            .returning(subscribers.c.id)
        ).first()
        if added is not None:
            return
    _follow_newest_signature(event, uow, signed_at)


def _follow_newest_signature(
    event: SignatureConfirmed, uow: UnitOfWork, signed_at: datetime
) -> None:
    """The person's row for the campaign, if an older signature made it, now names this one (the
    older id kept for the links already sent) and holds this signature's choice, unless they
    changed their mind after confirming it (a later unsubscribe wins, as in
    ``change_subscription``). A late confirmation of an older signature changes nothing."""
    s = subscribers.c
    at = uow.envelope.occurred_at
    opt_in = event.supporter.opt_in
    newer_choice = sa.or_(s.preference_changed_at.is_(None), s.preference_changed_at < at)
    left_at = sa.null() if opt_in else sa.literal(at, sa.DateTime(timezone=True))
    moved = uow.conn.execute(
        subscribers.update()
        .where(
            s.campaign == event.campaign,
            s.email_normalised == normalise_email(event.supporter.email),
            s.signature_id != event.signature_id,
            sa.or_(s.signed_at.is_(None), s.signed_at < signed_at),
        )
        .values(
            signature_id=event.signature_id,
            earlier_signature_ids=sa.func.array_append(s.earlier_signature_ids, s.signature_id),
            email=event.supporter.email,
            first_name=event.supporter.first_name,
            supporter_key=uow.deps.key(event.supporter.email),
            language=event.supporter.language,
            signed_at=signed_at,
            subscribed=sa.case((newer_choice, sa.literal(opt_in)), else_=s.subscribed),
            unsubscribed_at=sa.case((newer_choice, left_at), else_=s.unsubscribed_at),
            preference_changed_at=sa.case(
                (newer_choice, sa.literal(at, sa.DateTime(timezone=True))),
                else_=s.preference_changed_at,
            ),
        )
    ).rowcount
    if moved:
        log.info("subscriber follows their new signature", campaign=event.campaign, opt_in=opt_in)


def _named_by(signature_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """The subscriber row an unsubscribe link names: by their newest signature, or by one it
    replaced (a link in an email sent before they signed again)."""
    return sa.or_(
        subscribers.c.signature_id == signature_id,
        subscribers.c.earlier_signature_ids.contains([signature_id]),
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
    ``subscribed`` on the subscriber's row for this campaign (named by the link's signature, or
    by one their newest replaced), or on every row with the same normalised email
    (``scope="all"``), and records when they left. Emits nothing. Idempotent:
    the inbox claim, and a row only changes if the event is newer than its last change, so a
    redelivered or late event never undoes a later choice. Fan-outs read ``subscribed`` just
    before each copy goes out, so the change holds for copies not yet sent."""
    at = uow.envelope.occurred_at
    mine = (
        sa.select(subscribers.c.email_normalised)
        .where(_named_by(event.signature_id), subscribers.c.campaign == event.campaign)
        .limit(1)
    )
    if event.scope == "all":
        which = subscribers.c.email_normalised == mine.scalar_subquery()
    else:
        which = sa.and_(_named_by(event.signature_id), subscribers.c.campaign == event.campaign)
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
