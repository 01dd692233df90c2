"""``dearmp supporters erase EMAIL``: ask every service to remove a supporter's personal data.

The request is an event, ``supporter.erasure_requested``, staged in the outbox (so it is
published, with confirms, by the relay like any other) and bound to every service's queue. Each
service removes what it holds, in one transaction with its inbox claim, and answers with
``supporter.erased`` (its name and counts by table) under the request's correlation id.
``--wait`` reads those answers back from the outbox, where they are kept once published.

The request names the person by the keyed hash of their address, never the address. It also
deletes, in its own transaction, every outbox event that names the person
(``forget_events_about``); the CLI then drops their messages from every service's queues (main,
dead-letter and retry) (``shared.broker.dlq.drop_messages_about``) and their rate-limit counters.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared import outbox
from shared.messages import SupporterErased, SupporterErasureRequested
from shared.supporters import GMAIL_DOMAINS, event_names, normalise_email, supporter_key
from shared.topology import BINDINGS


def services_that_erase() -> list[str]:
    return [s for s, keys in BINDINGS.items() if SupporterErasureRequested.TYPE in keys]


def request_erasure(engine: Engine, email: str, secret: str) -> tuple[uuid.UUID, int]:
    """Stage the request, and delete from the outbox every event that names the person (sent,
    or not yet: a consumer would refuse it anyway, as made before the erasure). Returns the
    request's id (the correlation id of every answer) and how many events were deleted."""
    request_id = uuid.uuid4()
    address = normalise_email(email)
    with engine.begin() as conn:
        deleted = forget_events_about(conn, address)
        request = SupporterErasureRequested(key=supporter_key(secret, address))
        outbox.add(conn, request, correlation_id=request_id)
    return request_id, deleted


def forget_events_about(conn: Connection, address: str) -> int:
    """Delete the outbox rows whose event names this (normalised) address. Candidates are found
    by the address's domain in the body (every spelling of an address keeps its domain, or its
    provider's other one); each is then read and compared in full."""
    domain = address.rpartition("@")[2]
    domains = GMAIL_DOMAINS if domain in GMAIL_DOMAINS else (domain,)
    body = sa.func.convert_from(outbox.outbox.c.body, "UTF8")
    candidates = conn.execute(
        sa.select(outbox.outbox.c.id, outbox.outbox.c.body).where(
            sa.or_(*(body.ilike(f"%@{d}%") for d in domains))
        )
    ).all()
    doomed = [row.id for row in candidates if event_names(json.loads(row.body)["payload"], address)]
    if doomed:
        conn.execute(outbox.outbox.delete().where(outbox.outbox.c.id.in_(doomed)))
    return len(doomed)


def answers(engine: Engine, request_id: uuid.UUID) -> dict[str, dict[str, int]]:
    """What each service reported removing so far: {service: {table: rows}}."""
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.select(outbox.outbox.c.body).where(
                outbox.outbox.c.routing_key == SupporterErased.TYPE,
                outbox.outbox.c.correlation_id == str(request_id),
            )
        ).scalars()
        out: dict[str, dict[str, int]] = {}
        for body in bodies:
            payload: dict[str, Any] = json.loads(body)["payload"]
            out[payload["service"]] = dict(payload["removed"])
    return out


def wait_for_answers(
    engine: Engine, request_id: uuid.UUID, timeout: float, interval: float = 0.5
) -> dict[str, dict[str, int]]:
    expected = set(services_that_erase())
    deadline = time.monotonic() + timeout
    while True:
        got = answers(engine, request_id)
        if expected <= set(got) or time.monotonic() > deadline:
            return got
        time.sleep(interval)
