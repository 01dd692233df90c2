"""Mailer handlers: what to send for each event. Delivery (exactly once) is in delivery.py, the
confirmation reminder in reminders.py, retention and erasure in retention.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from services.mailer import compose, scheduled
from services.mailer.branding import Senders, branded
from services.mailer.delivery import (
    ALL_OUTCOMES,
    HeldConnection,
    OnSent,
    Outcome,
    Outgoing,
    Receipt,
    Then,
    Unwritten,
    deliver_once,
    record_unwritten,
)
from services.mailer.models import erased_supporters, reply_questions
from services.mailer.retention import erase_supporter
from services.mailer.sitting import Seats
from shared.broker.consumer import PermanentFailure
from shared.campaigns import Campaign, CampaignCache
from shared.config import Settings
from shared.dkim import signer_for
from shared.handling import (
    Dispatcher,
    Effect,
    Erasure,
    UnitOfWork,
    external_effect,
    in_transaction,
    one_statement,
)
from shared.letter_email import running_organisation
from shared.letters import TemplateProblem
from shared.logging import get_logger
from shared.messages import (
    Envelope,
    Event,
    HelpReplied,
    HelpRequested,
    ReplyAnswered,
    SignatureConfirmed,
    SignatureHeld,
    SignatureReceived,
    SignatureRepeated,
    SignatureResolved,
    SignatureUnresolvable,
    SupporterErased,
    SupporterErasureRequested,
    Target,
)
from shared.organisations import cached_brand
from shared.smtp import SendingPause, SmtpSender, SmtpTimeouts
from shared.supporters import supporter_key
from shared.throttle import TokenBucket
from shared.tokens import make_token

log = get_logger(__name__)
CONSUMER = "mailer"
FIXED_COPY = "fixed_copy"  # a ``both`` campaign's letter to its fixed target
CAMPAIGN_TTL = 5.0


@dataclass
class MailerDeps:
    engine: Engine
    sender: SmtpSender
    settings: Settings
    held: HeldConnection | None = None  # this thread's own connection for one-statement steps
    _campaigns: CampaignCache = field(init=False)
    _senders: Senders = field(init=False)
    seats: Seats = field(init=False)

    def __post_init__(self) -> None:
        self._campaigns = CampaignCache(self.engine, CAMPAIGN_TTL)
        self._senders = Senders(self.engine, CAMPAIGN_TTL)
        self.seats = Seats(self.engine, self.settings.dissolved_from, CAMPAIGN_TTL)

    def campaign(self, slug: str) -> Campaign:
        """The campaign, re-read at most every CAMPAIGN_TTL seconds (edits apply that late)."""
        campaign = self._campaigns.get(slug)
        if campaign is None:
            raise PermanentFailure(f"unknown campaign {slug!r}")
        return campaign

    def branded(self, out: Outgoing) -> Outgoing:
        """``out`` with the organisation's sender name, if it is from us to a supporter."""
        return branded(out, self._senders.name(out.campaign), f"hello@{self.settings.mail_domain}")

    def key(self, email: str) -> str:
        return supporter_key(self.settings.secret_key, email)

    def confirm_url(self, signature_id: object) -> str:
        token = make_token(self.settings.secret_key, "confirm", str(signature_id))
        return f"{self.settings.base_url}/confirm/{token}"

    def deliver(
        self,
        out: Outgoing,
        envelope: Envelope,
        *,
        record_on: frozenset[Outcome] = ALL_OUTCOMES,
        then: Then | None = None,
        after: Outgoing | None = None,
        on_sent: OnSent | None = None,
    ) -> Outcome:
        """Deliver for an event: nothing if the event was handled already; the event is recorded
        as handled with the outcomes in ``record_on``. Emails from us to a supporter carry the
        campaign's organisation's name (``branding``)."""
        out, after = self.branded(out), (self.branded(after) if after else None)
        return deliver_once(
            out,
            engine=self.engine,
            sender=self.sender,
            settings=self.settings,
            correlation_id=envelope.correlation_id,
            receipt=Receipt(CONSUMER, envelope.id, record_on),
            then=then,
            held=self.held,
            after=after,
            on_sent=on_sent,
        )


def _built(build: Callable[[], Any]) -> Any:
    """A message that cannot be built (an address that is not one) will never build: dead-letter."""
    try:
        return build()
    except ValueError as exc:
        raise PermanentFailure(f"cannot build the message: {str(exc)[:200]}") from None


# Remember a signature for its reminder, with the record of its confirmation email (``OnSent``:
# in the same statement): its address and language, no name (the reminder greets nobody by name:
# compose.confirmation). Signing again replaced any earlier pending signature from this address
# for the campaign (its link no longer works), so that one is forgotten; and if a newer one is
# already remembered (events can arrive out of order), this one is not.
REMEMBER_PENDING = """forgotten AS (
    DELETE FROM pending_confirmations
    WHERE campaign = %(p_campaign)s AND supporter_key = %(p_supporter_key)s AND NOT confirmed
      AND received_at < %(p_received_at)s
), remembered AS (
    INSERT INTO pending_confirmations (signature_id, campaign, supporter_key, email, first_name,
                                       last_name, language, received_at, due_at)
    SELECT %(p_signature_id)s, %(p_campaign)s, %(p_supporter_key)s, %(p_email)s, '', '',
           %(p_language)s, %(p_received_at)s, %(p_due_at)s
    WHERE NOT EXISTS (
        SELECT 1 FROM pending_confirmations
        WHERE campaign = %(p_campaign)s AND supporter_key = %(p_supporter_key)s
          AND NOT confirmed AND received_at > %(p_received_at)s
    )
    ON CONFLICT (signature_id) DO NOTHING
)"""


@external_effect(guarded=True)
def send_confirmation(event: SignatureReceived, effect: Effect) -> None:
    """Consumes signature.received; sends the confirmation email with a signed, expiring link and
    remembers the signature for the reminder. The address is not confirmed, so the email carries
    nothing the signer typed (compose.confirmation). Idempotent through the letters row for
    (signature, "confirmation"); the inbox claim and the pending row commit with the outcome."""
    deps: MailerDeps = effect.deps
    envelope = effect.envelope
    campaign = deps.campaign(event.campaign)
    url = deps.confirm_url(event.signature_id)
    msg = _built(
        lambda: compose.confirmation(
            event.signature_id, campaign, event.supporter, url, deps.settings
        )
    )
    key = deps.key(event.supporter.email)
    remember = {  # a refused address gets no reminder: only with a sent confirmation
        "p_signature_id": event.signature_id,
        "p_campaign": event.campaign,
        "p_supporter_key": key,
        "p_email": event.supporter.email,
        "p_language": event.supporter.language,
        "p_received_at": envelope.occurred_at,
        "p_due_at": envelope.occurred_at + timedelta(seconds=deps.settings.reminder_after_seconds),
    }
    deps.deliver(
        Outgoing(
            event.signature_id,
            "confirmation",
            campaign.slug,
            msg,
            event.supporter.email,
            key,
            signed_at=event.supporter.signed_at,
        ),
        envelope,
        on_sent=(REMEMBER_PENDING, remember),
    )


@one_statement
def note_confirmed(event: SignatureConfirmed, uow: UnitOfWork) -> None:
    """Consumes signature.confirmed; marks the signature confirmed so no reminder goes out, and
    drops the personal fields the reminder would have needed. If it arrives before
    signature.received was handled, the confirmed row is written first and wins. Idempotent:
    one upsert to the same values, storing nothing personal (so no inbox claim or erasure
    check)."""
    at = uow.envelope.occurred_at
    params = {"signature_id": event.signature_id, "campaign": event.campaign, "at": at}
    uow.conn.exec_driver_sql(NOTE_CONFIRMED, params)


# Driver SQL: compiling the Core upsert for every confirmation cost more than running it.
NOTE_CONFIRMED = """
INSERT INTO pending_confirmations (signature_id, campaign, received_at, due_at, confirmed, email,
                                   first_name, last_name)
VALUES (%(signature_id)s, %(campaign)s, %(at)s, %(at)s, true, '', '', '')
ON CONFLICT (signature_id) DO UPDATE SET confirmed = true, email = '', first_name = '',
                                         last_name = ''
"""


@external_effect(guarded=True)
def send_letter(event: SignatureResolved, effect: Effect) -> None:
    """Consumes signature.resolved; sends the campaign letter to the target, then a copy to the
    supporter; emits letter.sent for the letter, letter.failed for either. For a campaign whose
    target is ``both``, the same letter goes first to its fixed target (letter.failed if it is
    refused; the MP's letter still goes). Idempotent through the letters rows for (signature,
    "letter"), (signature, "copy") and (signature, "fixed_copy"); the inbox claim commits with
    the last outcome (the copy's claim shares the statement that records the letter as sent).
    Each row records the campaign's version the letter was rendered from."""
    deps: MailerDeps = effect.deps
    envelope = effect.envelope
    campaign = deps.campaign(event.campaign)
    # Whoever sits now (sitting.py): another member if the seat changed hands since, or wait.
    target = deps.seats.target_now(event, envelope.occurred_at)
    if target != event.target:
        log.info("letter goes to the member who sits now", constituency=event.constituency.code)  # type: ignore[union-attr]
    sid, supporter = event.signature_id, event.supporter
    key = deps.key(supporter.email)
    try:
        rendered, msg = _written(deps, campaign, event, target)
    except PermanentFailure as exc:  # never writable for this supporter: the signature fails
        _unwritten(effect, campaign, target, key, str(exc))
        return
    signed_at = supporter.signed_at
    letter = Outgoing(
        sid, "letter", campaign.slug, msg, target.email or "", key, rendered.text, signed_at
    )
    letter.campaign_version = campaign.version
    # A ``both`` campaign's copy to its fixed target goes first, once (its own row); the event
    # is done only after the letter and the supporter's copy.
    both = campaign.target.kind == "both" and target.kind == "mp"
    if both and _send_fixed_copy(effect, campaign, letter, rendered) in ("erased", "skipped"):
        return
    _remember_for_reply(deps, event, key)  # "Did your MP reply?", once the letter is sent
    # (a digest's or a capped letter's too: asked once its row is sent)
    waits = _scheduled(deps, campaign, event, letter)
    if waits is not None:  # a digest's row, or past the daily cap: the copy says when it goes
        msg = _built(
            lambda: compose.copy(
                sid,
                campaign,
                supporter,
                target,
                deps.settings,
                rendered,
                waits_for=waits.day,
                digest=waits.digest,
            )
        )
        copy_out = Outgoing(sid, "copy", campaign.slug, msg, supporter.email, key, None, signed_at)
        deps.deliver(copy_out, envelope)
        return
    try:  # built before the letter goes, so the letter's record can claim it at once
        copy: Outgoing | None = Outgoing(
            sid,
            "copy",
            campaign.slug,
            compose.copy(sid, campaign, supporter, target, deps.settings, rendered),
            supporter.email,
            key,
            signed_at=signed_at,
        )
    except ValueError as exc:  # no copy can be built: the letter still goes, then dead-letter
        copy, unbuildable = None, exc
    if copy is not None:
        # An MP's address that bounced holds the letter (AddressHeld, retried): once the MP data
        # gives the member another address, ``seats.target_now`` above sends it there.
        deps.deliver(letter, envelope, after=copy)
        return
    outcome = deps.deliver(letter, envelope, record_on=frozenset(("failed", "erased")))
    if outcome == "sent":
        raise PermanentFailure(f"cannot build the copy: {str(unbuildable)[:200]}")


def _written(
    deps: MailerDeps, campaign: Campaign, event: SignatureResolved, target: Target
) -> tuple[compose.RenderedLetter, EmailMessage]:
    """The letter for this supporter, or ``PermanentFailure`` with why it can never be written:
    the template fails for their data (a save tries it for sample supporters only), or the
    message cannot be built, or the target has no address."""
    if not target.email:
        raise PermanentFailure("the target has no email address")
    try:
        rendered = compose.render_letter(campaign, event.supporter, target)
    except TemplateProblem as exc:
        raise PermanentFailure(f"{exc}") from None
    sid, supporter = event.signature_id, event.supporter
    runs = running_organisation(cached_brand(deps.engine, campaign.slug))  # the office footer's
    msg = _built(
        lambda: compose.letter(
            sid, campaign, supporter, target, deps.settings, rendered, organisation=runs
        )
    )
    return rendered, msg


def _unwritten(effect: Effect, campaign: Campaign, target: Target, key: str, reason: str) -> None:
    """The letter can never be written for this supporter: its row ``failed`` with why and
    letter.failed (intake marks the signature failed; the organisation sees it on its failed
    letters page, its banner and its owners' hourly notice, services/mailer/problems.py),
    with the inbox claim, in one transaction. Nothing is sent: the copy and any fixed copy
    are written from the same letter. Idempotent: the inbox claim, and the row's state."""
    deps: MailerDeps = effect.deps
    event = effect.event
    assert isinstance(event, SignatureResolved)
    unwritten = Unwritten(
        signature_id=event.signature_id,
        campaign=campaign.slug,
        message_id=compose.message_id("letter", event.signature_id, deps.settings),
        recipient=target.email or "",
        supporter_key=key,
        campaign_version=campaign.version,
        reason=reason,
    )
    with effect.record() as uow:
        if uow is None:  # handled meanwhile, or the supporter was erased: nothing to record
            return
        if record_unwritten(uow.conn, unwritten, effect.envelope.correlation_id):
            log.warning("the letter could not be written: marked failed", campaign=campaign.slug)


def _remember_for_reply(deps: MailerDeps, event: SignatureResolved, key: str) -> None:
    """A row for the reply question (replies.py), written before the letter goes: the sweep asks
    only once the letter's own row is ``sent``. Idempotent (one row per signature)."""
    supporter = event.supporter
    with deps.engine.begin() as conn:
        conn.execute(
            pg_insert(reply_questions)
            .values(
                signature_id=event.signature_id,
                campaign=event.campaign,
                supporter_key=key,
                email=supporter.email,
                first_name=supporter.first_name,
                language=supporter.language,
                target_name=event.target.name,
                target_kind=event.target.kind,
                signed_at=supporter.signed_at,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["signature_id"])
        )


def _scheduled(
    deps: MailerDeps, campaign: Campaign, event: SignatureResolved, letter: Outgoing
) -> scheduled.Scheduled | None:
    """Whether the letter to an MP waits (services/mailer/scheduled.py): in a digest campaign
    for its day's digest, or past ``DEARMP_MP_DAILY_CAP`` for a later day. None: it goes now."""
    digest, cap = campaign.delivery == "digest", deps.settings.mp_daily_cap
    if event.target.kind != "mp" or not (digest or cap > 0):
        return None
    day = scheduled.today()
    with deps.engine.begin() as conn:
        if not digest:
            return scheduled.schedule_capped(conn, letter, cap, day)
        supporter = event.supporter
        words = supporter.letter if campaign.letter.editable and supporter.letter else ""
        entry = scheduled.digest_entry(supporter, words or supporter.comment, event.target.name)
        return scheduled.queue_for_digest(conn, letter, entry, day)


def _send_fixed_copy(
    effect: Effect, campaign: Campaign, letter: Outgoing, rendered: compose.RenderedLetter
) -> Outcome:
    """The letter to the MP, to a ``both`` campaign's fixed target too (purpose "fixed_copy",
    its own Message-ID). Records the event as handled only if the supporter was erased."""
    deps: MailerDeps = effect.deps
    event = effect.event
    assert isinstance(event, SignatureResolved)
    fixed = compose.fixed_target(campaign)
    sid, supporter, target = event.signature_id, event.supporter, event.target
    msg = _built(
        lambda: compose.letter(
            sid,
            campaign,
            supporter,
            target,
            deps.settings,
            rendered,
            to=fixed,
            purpose=FIXED_COPY,
            organisation=running_organisation(cached_brand(deps.engine, campaign.slug)),
        )
    )
    out = replace(letter, purpose=FIXED_COPY, message=msg, recipient=fixed.email or "")
    return deps.deliver(out, effect.envelope, record_on=frozenset(("erased",)))


def _notify(
    effect: Effect,
    event: Any,
    purpose: str,
    build: Callable[[Campaign], Any],
    once_per: UUID | None = None,
) -> None:
    """Send a notice to the supporter, once per (``once_per`` or the signature, ``purpose``)."""
    deps: MailerDeps = effect.deps
    campaign = deps.campaign(event.campaign)
    msg = _built(lambda: build(campaign))
    email, once_per = event.supporter.email, once_per or event.signature_id
    signed_at = event.supporter.signed_at
    deps.deliver(
        Outgoing(once_per, purpose, campaign.slug, msg, email, deps.key(email), None, signed_at),
        effect.envelope,
    )


@external_effect(guarded=True)
def send_unresolvable_notice(event: SignatureUnresolvable, effect: Effect) -> None:
    """Consumes signature.unresolvable; tells the supporter what went wrong and how to fix it.
    Idempotent through the letters row for (signature, "unresolvable")."""
    settings = effect.deps.settings
    _notify(
        effect,
        event,
        "unresolvable",
        lambda campaign: compose.unresolvable_notice(
            event.signature_id,
            campaign,
            event.supporter,
            event.reason,
            event.message,
            settings,
            target_name=event.target_name,
            constituency=event.constituency.name if event.constituency else None,
        ),
    )


@external_effect(guarded=True)
def send_held_notice(event: SignatureHeld, effect: Effect) -> None:
    """Consumes signature.held; tells the supporter once that the seat is vacant (or Parliament
    dissolved for an election) and the letter waits for the new MP. Idempotent through the
    letters row for (signature, "held")."""
    settings = effect.deps.settings
    name = event.constituency.name if event.constituency else None
    _notify(
        effect,
        event,
        "held",
        lambda campaign: compose.held_notice(
            event.signature_id, campaign, event.supporter, name, settings, event.reason
        ),
    )


@external_effect(guarded=True)
def send_already_signed(event: SignatureRepeated, effect: Effect) -> None:
    """Consumes signature.repeated; tells the address's owner they had already signed, and where
    their letter stands, with nothing this (unconfirmed) attempt typed. One email per attempt:
    the letters row is (attempt, "repeat"), and the per-email rate limit bounds the attempts."""
    settings = effect.deps.settings
    _notify(
        effect,
        event,
        "repeat",
        lambda campaign: compose.already_signed(
            event.attempt_id,
            campaign,
            event.supporter,
            event.status,
            event.target_name,
            settings,
            event.sent_at,
        ),
        once_per=event.attempt_id,
    )


def _settled(event: ReplyAnswered) -> bool:
    return event.answer in ("yes", "no")


@one_statement(applies=_settled)
def note_reply_answered(event: ReplyAnswered, uow: UnitOfWork) -> None:
    """Consumes reply.answered (yes or no: the supporter told us how it ended); closes the
    question so no reminder of it goes, and blanks the fields it would have needed. Idempotent:
    one update to the same values, storing nothing personal (no inbox claim)."""
    uow.conn.exec_driver_sql(CLOSE_QUESTION, {"signature_id": event.signature_id})


CLOSE_QUESTION = """
UPDATE reply_questions SET closed_at = COALESCE(closed_at, now()), email = '', first_name = '',
                           lease_until = NULL
WHERE signature_id = %(signature_id)s
"""


@in_transaction
def forget_supporter(event: SupporterErasureRequested, uow: UnitOfWork) -> None:
    """Consumes supporter.erasure_requested; scrubs the supporter's letters (bodies, subjects,
    their address), deletes their pending confirmations, and remembers (by keyed hash) not to
    send them anything more; emits supporter.erased with the counts. Idempotent: inbox claim,
    and a second run finds nothing left to remove."""
    removed = erase_supporter(uow.conn, event.key, uow.envelope.occurred_at)
    uow.emit(SupporterErased(service=CONSUMER, removed=removed))
    log.info("supporter erased", removed=removed)


# "Can't sign? Tell us": one staff notice per (request, staff address), ever.
HELP_NOTICES = UUID("0b7f3f5e-2d1a-4c7e-9a40-6f1d2b8c9e31")


def help_notice_id(request_id: UUID, address: str) -> UUID:
    return uuid5(HELP_NOTICES, f"{request_id}\n{address.lower()}")


@external_effect(guarded=True)
def send_help_acknowledgement(event: HelpRequested, effect: Effect) -> None:
    """Consumes help.requested; acknowledges the request to the person (their language, nothing
    they typed: compose.help_acknowledgement), then tells each owner and editor of the
    campaign's organisation that it waits on the staff page (English). Idempotent through the
    letters rows for (request, "help_ack") and (``help_notice_id``, "help_notice"); the inbox
    claim commits with the last email's outcome, so a redelivery sends only what had not gone.
    A notice's row names no campaign: it is no email of the campaign's, in its figures."""
    deps: MailerDeps = effect.deps
    envelope = effect.envelope
    campaign = deps.campaign(event.campaign)
    settings = deps.settings
    ack = _built(lambda: compose.help_acknowledgement(event.request_id, campaign, event, settings))
    key = deps.key(event.email)
    outs = [
        Outgoing(
            event.request_id,
            "help_ack",
            campaign.slug,
            ack,
            event.email,
            key,
            signed_at=envelope.occurred_at,
        )
    ]
    url = f"{settings.base_url}/admin/c/{campaign.slug}/help/{event.request_id}"
    for address in dict.fromkeys(a.strip().lower() for a in event.staff):
        once = help_notice_id(event.request_id, address)
        try:
            msg = compose.help_notice(once, campaign, address, url, envelope.occurred_at, settings)
        except ValueError:  # a staff address that is not one: the others are still told
            log.error("help notice cannot be built for a staff address")
            continue
        outs.append(Outgoing(once, "help_notice", "", msg, address))
    for n, out in enumerate(outs, 1):
        deps.deliver(out, envelope, record_on=ALL_OUTCOMES if n == len(outs) else frozenset())


@external_effect(guarded=True)
def send_help_reply(event: HelpReplied, effect: Effect) -> None:
    """Consumes help.replied; emails a staff member's answer to the person who asked for help,
    From the organisation's sender name (``branding``), Reply-To the address the staff page
    gave. Idempotent through the letters row for (reply, "help_reply")."""
    deps: MailerDeps = effect.deps
    campaign = deps.campaign(event.campaign)
    msg = _built(
        lambda: compose.help_reply(
            event.reply_id,
            campaign,
            event,
            event.text,
            event.organisation,
            event.reply_to,
            deps.settings,
        )
    )
    out = Outgoing(
        event.reply_id,
        "help_reply",
        campaign.slug,
        msg,
        event.email,
        deps.key(event.email),
        event.text,
        effect.envelope.occurred_at,
    )
    deps.deliver(out, effect.envelope)


HANDLERS: dict[type[Event], Callable[..., None]] = {
    SignatureReceived: send_confirmation,
    SignatureConfirmed: note_confirmed,
    SignatureResolved: send_letter,
    SignatureUnresolvable: send_unresolvable_notice,
    SignatureHeld: send_held_notice,
    SignatureRepeated: send_already_signed,
    HelpRequested: send_help_acknowledgement,
    HelpReplied: send_help_reply,
    SupporterErasureRequested: forget_supporter,
    ReplyAnswered: note_reply_answered,
}


def make_deps(
    settings: Settings,
    engine: Engine,
    limiter: TokenBucket | None = None,
    pause: SendingPause | None = None,
) -> MailerDeps:
    """One per thread: each has its own SMTP connection; the rate limiter and the pause (after
    the server refuses our set-up) are the process's."""
    return MailerDeps(
        engine=engine,
        sender=SmtpSender(
            settings.smtp_url,
            timeouts=SmtpTimeouts.parse(settings.smtp_timeouts),
            limiter=limiter,
            pause=pause,
            dkim=signer_for(settings),
        ),
        settings=settings,
        held=HeldConnection(engine),
    )


def bootstrap(
    settings: Settings,
    engine: Engine,
    limiter: TokenBucket | None = None,
    pause: SendingPause | None = None,
) -> Dispatcher:
    """Wire real adapters into the handlers; one call per consumer thread (own SMTP connection)."""
    deps = make_deps(settings, engine, limiter, pause)
    erasure = Erasure(erased_supporters, settings.secret_key)
    return Dispatcher(CONSUMER, engine, HANDLERS, deps, erasure)
