"""What every consumer does around its handlers, in one place: route by event class, run the
handler in one transaction with the inbox claim, and let it emit events through the outbox.

A handler is a plain function: the event first, then a ``UnitOfWork``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shared import inbox, outbox
from shared.logging import get_logger
from shared.messages import Envelope, Event

log = get_logger(__name__)


@dataclass
class UnitOfWork:
    """One handler run: its DB connection (inside a transaction) and the envelope it handles."""

    conn: Connection
    envelope: Envelope
    deps: Mapping[str, Any] = field(default_factory=dict)

    def emit(self, event: Event) -> uuid.UUID:
        """Stage an event in the outbox, carrying the journey's correlation id."""
        return outbox.add(self.conn, event, correlation_id=self.envelope.correlation_id)


TransactionalHandler = Callable[[Any, UnitOfWork], None]


def transactional(
    consumer: str,
    engine: Engine,
    handlers: Mapping[type[Event], TransactionalHandler],
    deps: Mapping[str, Any] | None = None,
) -> Callable[[Envelope], None]:
    """Build the consumer's ``handle(envelope)``: claim the event id in the inbox and run the
    handler in the same transaction, so a redelivered event changes nothing twice."""

    def handle(envelope: Envelope) -> None:
        event = envelope.event()
        handler = handlers.get(type(event))
        if handler is None:
            log.info("event not handled here, skipped", consumer=consumer, event_type=envelope.type)
            return
        with engine.begin() as conn:
            if not inbox.claim(conn, consumer, envelope.id):
                log.info("duplicate event ignored", consumer=consumer)
                return
            handler(event, UnitOfWork(conn=conn, envelope=envelope, deps=deps or {}))

    return handle
