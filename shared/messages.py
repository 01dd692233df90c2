"""The versioned event envelope and every event type, as pydantic models.

An envelope is small: ``id``, ``type``, ``version``, ``occurred_at``, ``correlation_id`` (the
signature id through the whole journey) and ``payload``. Each (type, version) maps to one payload
model in ``EVENT_TYPES``; an unknown pair raises ``UnknownEvent`` and the consumer dead-letters it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class UnknownEvent(Exception):
    """An event type or version this code does not know; never retried, dead-lettered at once."""


class BadEvent(Exception):
    """A message that cannot be decoded or whose payload does not match its model."""


class Event(BaseModel):
    """Base for payloads. ``TYPE`` doubles as the routing key."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


Language = Literal["en", "cy", "fr"]  # shared.i18n.LANGUAGES


class Supporter(BaseModel):
    """What a supporter told us; travels with the signature so each service can do its job."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    first_name: str
    last_name: str
    email: str
    postcode: str
    address_lines: list[str] = Field(default_factory=list)
    comment: str = ""
    # Their own wording of an editable letter's message block; "" means the campaign's words.
    letter: str = ""
    opt_in: bool = False
    # The language they signed in (``shared.i18n.LANGUAGES``): every email to them is in it; the
    # letter to the target stays in the campaign's.
    language: Language = "en"
    # When they signed: an erasure refuses events for signatures made before it was asked for,
    # never a later signature of the same person (shared.erased). None: an older event.
    signed_at: datetime | None = None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Constituency(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    name: str


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    email: str | None = None
    party: str | None = None
    kind: Literal["mp", "fixed"] = "mp"


class SignatureReceived(Event):
    TYPE = "signature.received"
    signature_id: uuid.UUID
    campaign: str
    supporter: Supporter


class SignatureConfirmed(Event):
    TYPE = "signature.confirmed"
    signature_id: uuid.UUID
    campaign: str
    supporter: Supporter
    # When they ticked the campaign organisation's own-list opt-in (a consent separate from
    # ``supporter.opt_in``, the campaign's updates); None: not ticked, or an older event. Its
    # organisation's webhooks get the signature only then. Intake leaves the key out when None,
    # so consumers still running code from before the field accept most events.
    org_opt_in_at: datetime | None = None


class SignatureResolved(Event):
    TYPE = "signature.resolved"
    signature_id: uuid.UUID
    campaign: str
    supporter: Supporter
    constituency: Constituency | None
    target: Target


class SignatureUnresolvable(Event):
    """No letter can be emailed for the signature (``reason``; ``message`` says it in English).
    When the resolver found the seat and its member but the member publishes no email address
    (``no_contact``), ``constituency`` and ``target_name`` name them, so the supporter can post
    the letter instead."""

    TYPE = "signature.unresolvable"
    signature_id: uuid.UUID
    campaign: str
    supporter: Supporter
    reason: str
    message: str
    constituency: Constituency | None = None
    target_name: str | None = None


class SignatureHeld(Event):
    """The resolver found the supporter's constituency but cannot send yet (the seat is vacant
    until a by-election): the letter waits and goes to the new member. Emitted once, when the
    signature is first held; ``signature.resolved`` follows when it is released."""

    TYPE = "signature.held"
    signature_id: uuid.UUID
    campaign: str
    supporter: Supporter
    reason: str
    constituency: Constituency | None = None


class SignatureRepeated(Event):
    """Someone signed a campaign again with the address of a signature that is already
    confirmed: nothing new is stored or sent to the target; the mailer tells the address's owner
    where their letter stands. ``signature_id`` is the earlier signature; ``attempt_id`` names
    this attempt (one email per attempt, within the per-email rate limit); ``supporter`` is what
    the new attempt typed (only its name, email and language are used)."""

    TYPE = "signature.repeated"
    signature_id: uuid.UUID
    attempt_id: uuid.UUID
    campaign: str
    supporter: Supporter
    status: str
    target_name: str | None = None
    sent_at: datetime | None = None


class LetterSent(Event):
    TYPE = "letter.sent"
    signature_id: uuid.UUID
    purpose: str
    message_id: str


class LetterFailed(Event):
    TYPE = "letter.failed"
    signature_id: uuid.UUID
    purpose: str
    reason: str


class SupporterErasureRequested(Event):
    """Staff asked (``dearmp supporters erase EMAIL``) to remove a supporter's personal data.
    The person is named by ``key``, the keyed hash of their normalised address
    (``shared.supporters.supporter_key``), never the address: every service finds their rows by
    it. The envelope's correlation id names the request, and each service answers with
    ``supporter.erased`` under the same id. Version 2: version 1 carried the address."""

    TYPE = "supporter.erasure_requested"
    VERSION = 2
    key: str


class SupporterErased(Event):
    """One service removed what it held for an erasure request: ``removed`` counts rows by table."""

    TYPE = "supporter.erased"
    service: str
    removed: dict[str, int]


class UpdatePublished(Event):
    """Staff published campaign update number ``update_number`` and asked for it to be emailed:
    the updates service fans it out to the campaign's subscribers."""

    TYPE = "update.published"
    campaign: str
    update_number: int
    title: str


class SubscriptionChanged(Event):
    """A subscriber chose, from the link in an update email, to leave this campaign's updates
    (``scope="campaign"``), every campaign's (``"all"``), or to come back (``subscribed=True``).
    Staged by intake; the updates service, which owns the subscriber list, applies it. The
    envelope's ``occurred_at`` orders changes: an older change never overrides a newer one."""

    TYPE = "subscription.changed"
    signature_id: uuid.UUID
    campaign: str
    scope: Literal["campaign", "all"]
    subscribed: bool


class ReplyAnswered(Event):
    """A supporter answered "Has your MP replied?" (``yes``, ``not_yet`` or ``no``) on intake's
    page. The mailer sends no reminder of the question after ``yes`` or ``no``."""

    TYPE = "reply.answered"
    signature_id: uuid.UUID
    campaign: str
    answer: Literal["yes", "not_yet", "no"]


class HelpRequested(Event):
    """Someone sent "Can't sign? Tell us" (intake's ``help_requests``): the mailer acknowledges
    it to ``email`` in ``language`` (nothing they typed: nobody has confirmed the address) and
    tells ``staff``, the campaign's organisation's owners and editors, that it is waiting (in
    English, without the message: it is read on the staff page). ``request_id`` names the
    request (one acknowledgement and one notice per staff address, ever)."""

    TYPE = "help.requested"
    request_id: uuid.UUID
    campaign: str
    email: str
    language: Language = "en"
    staff: list[str] = Field(default_factory=list)


class HelpReplied(Event):
    """A staff member answered a help request from the staff page: the mailer emails ``text``
    (theirs) to ``email``, From the organisation's sender name, Reply-To ``reply_to`` when
    given, its footer naming ``organisation`` in ``language``. ``reply_id`` names this reply
    (sent once)."""

    TYPE = "help.replied"
    reply_id: uuid.UUID
    request_id: uuid.UUID
    campaign: str
    email: str
    language: Language = "en"
    text: str
    organisation: str
    reply_to: str | None = None


EVENT_TYPES: dict[tuple[str, int], type[Event]] = {
    (cls.TYPE, cls.VERSION): cls
    for cls in (
        SignatureReceived,
        SignatureConfirmed,
        SignatureResolved,
        SignatureUnresolvable,
        SignatureHeld,
        SignatureRepeated,
        LetterSent,
        LetterFailed,
        SupporterErasureRequested,
        SupporterErased,
        UpdatePublished,
        SubscriptionChanged,
        ReplyAnswered,
        HelpRequested,
        HelpReplied,
    )
}


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    payload: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, *, correlation_id: str | uuid.UUID | None = None) -> Envelope:
        return cls(
            type=event.TYPE,
            version=event.VERSION,
            correlation_id=str(correlation_id) if correlation_id else None,
            payload=event.model_dump(mode="json"),
        )

    def event(self) -> Event:
        """The typed payload; ``UnknownEvent`` for an unknown type/version, ``BadEvent`` if invalid."""
        model = EVENT_TYPES.get((self.type, self.version))
        if model is None:
            raise UnknownEvent(f"unknown event {self.type} v{self.version}")
        try:
            return model.model_validate(self.payload)
        except ValidationError as exc:
            raise BadEvent(
                f"{self.type} v{self.version} payload invalid: {exc.error_count()} errors"
            ) from None

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, body: bytes) -> Envelope:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise BadEvent(f"not an event envelope: {exc.error_count()} errors") from None
