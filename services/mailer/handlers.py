"""Mailer handlers: what to send for each event. Delivery (exactly once) is in delivery.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from services.mailer import compose
from services.mailer.delivery import Outgoing, deliver_once
from services.mailer.smtp import SmtpSender
from shared.broker.consumer import PermanentFailure
from shared.campaigns import Campaign, get_campaign
from shared.config import Settings
from shared.messages import (
    Envelope,
    Event,
    SignatureReceived,
    SignatureResolved,
    SignatureUnresolvable,
)
from shared.tokens import make_token

CONSUMER = "mailer"


@dataclass
class MailerDeps:
    engine: Engine
    sender: SmtpSender
    settings: Settings

    def campaign(self, slug: str) -> Campaign:
        with self.engine.connect() as conn:
            campaign = get_campaign(conn, slug)
        if campaign is None:
            raise PermanentFailure(f"unknown campaign {slug!r}")
        return campaign

    def deliver(self, out: Outgoing, envelope: Envelope) -> None:
        deliver_once(
            out,
            envelope,
            consumer=CONSUMER,
            engine=self.engine,
            sender=self.sender,
            settings=self.settings,
        )


def send_confirmation(event: SignatureReceived, envelope: Envelope, deps: MailerDeps) -> None:
    """Consumes signature.received; sends the confirmation email with a signed, expiring link.
    Idempotent through the letters row for (signature, "confirmation")."""
    campaign = deps.campaign(event.campaign)
    token = make_token(deps.settings.secret_key, "confirm", str(event.signature_id))
    url = f"{deps.settings.base_url}/confirm/{token}"
    msg = compose.confirmation(event.signature_id, campaign, event.supporter, url, deps.settings)
    deps.deliver(
        Outgoing(event.signature_id, "confirmation", campaign.slug, msg, event.supporter.email),
        envelope,
    )


def send_letter(event: SignatureResolved, envelope: Envelope, deps: MailerDeps) -> None:
    """Consumes signature.resolved; sends the campaign letter to the target; emits letter.sent or
    letter.failed. Idempotent through the letters row for (signature, "letter")."""
    campaign = deps.campaign(event.campaign)
    if not event.target.email:
        raise PermanentFailure("resolved target has no email address")
    msg = compose.letter(event.signature_id, campaign, event.supporter, event.target, deps.settings)
    body = msg.get_body(("plain",))
    deps.deliver(
        Outgoing(
            event.signature_id,
            "letter",
            campaign.slug,
            msg,
            event.target.email,
            body_text=body.get_content() if body else None,
        ),
        envelope,
    )


def send_unresolvable_notice(
    event: SignatureUnresolvable, envelope: Envelope, deps: MailerDeps
) -> None:
    """Consumes signature.unresolvable; tells the supporter what went wrong and how to fix it.
    Idempotent through the letters row for (signature, "unresolvable")."""
    campaign = deps.campaign(event.campaign)
    msg = compose.unresolvable_notice(
        event.signature_id, campaign, event.supporter, event.message, deps.settings
    )
    deps.deliver(
        Outgoing(event.signature_id, "unresolvable", campaign.slug, msg, event.supporter.email),
        envelope,
    )


HANDLERS: dict[type[Event], Callable[[Any, Envelope, MailerDeps], None]] = {
    SignatureReceived: send_confirmation,
    SignatureResolved: send_letter,
    SignatureUnresolvable: send_unresolvable_notice,
}


def bootstrap(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    """Wire real adapters into the handlers; one call per consumer thread (own SMTP connection)."""
    deps = MailerDeps(engine=engine, sender=SmtpSender(settings.smtp_url), settings=settings)

    def handle(envelope: Envelope) -> None:
        event: Event = envelope.event()
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(event, envelope, deps)

    return handle
