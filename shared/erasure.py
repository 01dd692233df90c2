"""``dearmp supporters erase EMAIL``: ask every service to remove a supporter's personal data.

The request is an event, ``supporter.erasure_requested``, staged in the outbox (so it is
published, with confirms, by the relay like any other) and bound to every service's queue. Each
service removes what it holds, in one transaction with its inbox claim, and answers with
``supporter.erased`` (its name and counts by table) under the request's correlation id.
``--wait`` reads those answers back from the outbox, where they are kept once published.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared import outbox
from shared.messages import SupporterErased, SupporterErasureRequested
from shared.supporters import normalise_email
from shared.topology import BINDINGS


def services_that_erase() -> list[str]:
    return [s for s, keys in BINDINGS.items() if SupporterErasureRequested.TYPE in keys]


def request_erasure(engine: Engine, email: str) -> uuid.UUID:
    """Stage the request; returns its id (the correlation id of every answer)."""
    request_id = uuid.uuid4()
    with engine.begin() as conn:
        outbox.add(
            conn,
            SupporterErasureRequested(email=normalise_email(email)),
            correlation_id=request_id,
        )
    return request_id


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
