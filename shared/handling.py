"""What every consumer does around its handlers, in one place.

A handler is a plain function, the event first, then its context. It is one of two kinds, named
where it is defined:

- ``@in_transaction``: the effect is database work. The dispatcher claims the event id in the
  inbox and runs the handler in that same transaction, with a ``UnitOfWork`` (its connection,
  ``emit`` to the outbox): a redelivered event changes nothing twice.
- ``@one_statement``: the effect is a single statement that is idempotent on its own (an
  overwrite with the event's values, an upsert, an update guarded by the state it moves from) and
  stores no personal data. It runs in autocommit, without an inbox claim or an erasure check: a
  redelivery repeats the same statement to no effect. One round trip instead of five or six.
- ``@external_effect``: the effect reaches the outside world (SMTP, an HTTP look-up) and cannot be
  rolled back, so it happens outside any transaction, guarded by state of its own. The handler
  gets an ``Effect``; it records what happened with ``with effect.record() as uow:`` (the inbox
  claim and the record in one transaction; ``uow`` is None when the event was handled meanwhile
  or the supporter erased) or through its own guard (the mailer's ``letters`` row, whose claim
  statement reads the inbox and the erased list itself: ``external_effect(guarded=True)``).

Any kind may say which of its events concern it (``applies``): the others are consumed without
touching the database (e.g. the updates service and a signature that did not opt in).

The erasure check is here too: a service that keeps a list of erased supporters (``Erasure``)
never runs a handler for an event about one of them, except the erasure request itself. Inside
the transaction the check waits for an erasure in progress (``shared.erased``), so an event and
an erasure handled at the same moment cannot interleave.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared import inbox, outbox
from shared.erased import refused
from shared.logging import get_logger
from shared.messages import Envelope, Event
from shared.supporters import supporter_key

log = get_logger(__name__)

Kind = Literal["transaction", "statement", "external"]
F = TypeVar("F", bound=Callable[..., None])
Applies = Callable[[Any], bool]


def _marker(kind: Kind, func: F | None, applies: Applies | None, **extra: object) -> Any:
    def mark(f: F) -> F:
        f.handler_kind = kind  # type: ignore[attr-defined]
        f.handler_applies = applies  # type: ignore[attr-defined]
        for name, value in extra.items():
            setattr(f, f"handler_{name}", value)
        return f

    return mark(func) if func is not None else mark


def in_transaction(func: F | None = None, *, applies: Applies | None = None) -> Any:
    """Mark a handler whose whole effect is database work in the consumer's transaction.
    ``applies(event)``: False for the events it has nothing to do with (consumed untouched)."""
    return _marker("transaction", func, applies)


def one_statement(func: F | None = None, *, applies: Applies | None = None) -> Any:
    """Mark a handler whose effect is one statement, idempotent on its own, storing no personal
    data: it runs in autocommit, with no inbox claim and no erasure check."""
    return _marker("statement", func, applies)


def external_effect(
    func: F | None = None, *, guarded: bool = False, applies: Applies | None = None
) -> Any:
    """Mark a handler with an effect outside the database (SMTP, HTTP), guarded by its own state.
    ``guarded=True``: its guard looks at the inbox and the erased list itself, in the statement
    that claims the effect, so the dispatcher does not look first."""
    return _marker("external", func, applies, guarded=guarded)


def kind_of(handler: Callable[..., None]) -> Kind:
    kind = getattr(handler, "handler_kind", None)
    if kind not in ("transaction", "statement", "external"):
        raise TypeError(
            f"{handler.__qualname__} is not marked @in_transaction, @one_statement or "
            "@external_effect"
        )
    return kind  # type: ignore[return-value]


@dataclass(frozen=True)
class Erasure:
    """A service's list of erased supporters (``shared.erased``) and the key that names them."""

    table: sa.Table
    secret_key: str

    def key(self, email: str) -> str:
        return supporter_key(self.secret_key, email)


@dataclass
class UnitOfWork:
    """One handler run: its DB connection (inside a transaction) and the envelope it handles."""

    conn: Connection
    envelope: Envelope
    deps: Any = None

    def emit(self, event: Event) -> uuid.UUID:
        """Stage an event in the outbox, carrying the journey's correlation id."""
        return outbox.add(self.conn, event, correlation_id=self.envelope.correlation_id)


@dataclass
class Effect:
    """One run of an external-effect handler: the envelope, the dependencies, and ``record()``."""

    consumer: str
    engine: Engine
    envelope: Envelope
    event: Event
    deps: Any
    erasure: Erasure | None = None

    @contextmanager
    def record(self) -> Iterator[UnitOfWork | None]:
        """A transaction with the inbox claim and the erasure check: yields None (and records
        nothing) when the event was handled meanwhile or its supporter erased."""
        with self.engine.begin() as conn:
            if _claimed(conn, self.consumer, self.erasure, self.envelope.id, self.event):
                yield UnitOfWork(conn=conn, envelope=self.envelope, deps=self.deps)
            else:
                yield None

    def record_in_one(self, sql: str, params: dict[str, object]) -> bool:
        """Record the effect with one autocommit statement that claims the event itself: ``sql``
        selects ``inbox.CLAIM_CALL`` in a CTE whose other parts act only when it answered
        'claimed', and answers that. False (nothing recorded) when the event was handled
        meanwhile or its supporter erased. One round trip instead of five (BEGIN, claim, the
        record's statements, COMMIT)."""
        claim = _claim_params(self.consumer, self.erasure, self.envelope.id, self.event)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            outcome = conn.exec_driver_sql(sql, {**params, **claim}).scalar_one()
        return _said(outcome, self.consumer, self.event)


def _claim_params(
    consumer: str, erasure: Erasure | None, event_id: uuid.UUID, event: Event
) -> dict[str, object]:
    """The claim of ``event``, with the erasure check when the service keeps an erased list and
    the event is about a supporter."""
    supporter = getattr(event, "supporter", None)
    if erasure is None or supporter is None:
        return inbox.claim_params(consumer, event_id)
    key = erasure.key(supporter.email)
    return inbox.claim_params(consumer, event_id, erasure.table, key, supporter.signed_at)


def _claimed(
    conn: Connection, consumer: str, erasure: Erasure | None, event_id: uuid.UUID, event: Event
) -> bool:
    """Claim the event in the inbox: False (nothing to do, the claim stays) when it was handled
    already or is about a signature its supporter has asked to be erased since. One statement."""
    params = _claim_params(consumer, erasure, event_id, event)
    return _said(inbox.claim_checked(conn, params), consumer, event)


def _said(outcome: str, consumer: str, event: Event) -> bool:
    """Whether the claim's outcome lets the handler act; a duplicate or an erased supporter's
    event is logged (without personal data)."""
    if outcome == "duplicate":
        log.info("duplicate event ignored", consumer=consumer)
    elif outcome == "erased":
        log.info("late event for an erased supporter: nothing done", event_type=event.TYPE)
    return outcome == "claimed"


class Dispatcher:
    """The consumer's ``handle(envelope)``: route by event class and run the handler as its kind
    says. Events no handler takes are consumed with a log line."""

    def __init__(
        self,
        consumer: str,
        engine: Engine,
        handlers: Mapping[type[Event], Callable[..., None]],
        deps: Any = None,
        erasure: Erasure | None = None,
    ) -> None:
        self.consumer, self.engine, self.deps, self.erasure = consumer, engine, deps, erasure
        self.handlers = dict(handlers)
        self.kinds = {event_type: kind_of(h) for event_type, h in handlers.items()}
        # Before an external effect: in the inbox already? When was the supporter erased?
        erased_at = (
            sa.select(erasure.table.c.erased_at)
            .where(erasure.table.c.supporter_key == sa.bindparam("key"))
            .scalar_subquery()
            if erasure
            else sa.null()
        )
        self._quick_look = sa.select(
            sa.exists().where(
                inbox.inbox.c.consumer == sa.bindparam("consumer"),
                inbox.inbox.c.event_id == sa.bindparam("event_id"),
            ),
            erased_at,
        )

    def __call__(self, envelope: Envelope) -> None:
        event = envelope.event()
        handler = self.handlers.get(type(event))
        if handler is None:
            log.info(
                "event not handled here, skipped", consumer=self.consumer, event_type=envelope.type
            )
            return
        applies = getattr(handler, "handler_applies", None)
        if applies is not None and not applies(event):
            return  # nothing to do for this one: no statement, nothing to remember
        kind = self.kinds[type(event)]
        if kind == "transaction":
            with self.engine.begin() as conn:
                self.within(conn, envelope)
            return
        if kind == "statement":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                handler(event, UnitOfWork(conn=conn, envelope=envelope, deps=self.deps))
            return
        if not getattr(handler, "handler_guarded", False) and self._done_before(envelope, event):
            return
        handler(event, Effect(self.consumer, self.engine, envelope, event, self.deps, self.erasure))

    def _done_before(self, envelope: Envelope, event: Event) -> bool:
        """A quick look before an external effect (not a guarantee: ``Effect.record`` looks
        again): handled already, or about an erased supporter (then consumed, and recorded).
        One statement, read-only, in autocommit: no transaction to open or roll back."""
        supporter = getattr(event, "supporter", None)
        key = self.erasure.key(supporter.email) if self.erasure and supporter else None
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            done, erased_at = conn.execute(
                self._quick_look,
                {"consumer": self.consumer, "event_id": envelope.id, "key": key},
            ).one()
        if done:
            log.info("duplicate event ignored", consumer=self.consumer)
            return True
        if key is None or not refused(erased_at, supporter.signed_at):  # type: ignore[union-attr]
            return False
        log.info("late event for an erased supporter: nothing done", event_type=event.TYPE)
        with self.engine.begin() as conn:
            inbox.claim(conn, self.consumer, envelope.id)
        return True

    def within(self, conn: Connection, envelope: Envelope) -> None:
        """Run an in-transaction handler in the caller's transaction (tests hold one open to
        show what a concurrent event sees)."""
        event = envelope.event()
        if self.kinds.get(type(event)) != "transaction":
            raise TypeError(f"{envelope.type} has no in-transaction handler here")
        if not _claimed(conn, self.consumer, self.erasure, envelope.id, event):
            return
        self.handlers[type(event)](event, UnitOfWork(conn=conn, envelope=envelope, deps=self.deps))
