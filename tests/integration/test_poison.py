"""Must-show 4: poison messages reach the dead-letter queue while other messages keep flowing.

Three kinds of poison go to the resolver's queue: bytes that are not an envelope, an event
version nobody knows (both dead-lettered at once), and a valid event whose handler fails every
time (dead-lettered after DEARMP_MAX_ATTEMPTS attempts, with growing delays between them).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest
import sqlalchemy as sa

from shared.broker.consumer import ATTEMPT_HEADER, ERROR_HEADER
from shared.messages import Envelope, SignatureConfirmed, Supporter
from shared.topology import Topology
from tests.support import (
    confirm_email,
    get_all,
    make_signature,
    post_signatures,
    publish_raw,
    wait_until,
)

N = 20


@pytest.fixture
def slow_retries(service_env: dict[str, str]) -> None:
    # Slow enough that the good messages finish long before the poison exhausts its attempts.
    service_env["DEARMP_RETRY_DELAYS_MS"] = "2000,4000"


@pytest.mark.fault
def test_poison_is_dead_lettered_after_n_attempts_and_others_flow(
    slow_retries, system, mail, engine, amqp_url, namespace
) -> None:
    system.start()
    topology = Topology(namespace)
    exchange = topology.events_exchange

    # The handler fails every time: a campaign name longer than the column allows.
    failing = Envelope.wrap(
        SignatureConfirmed(
            signature_id=uuid.uuid4(),
            campaign="x" * 150,
            supporter=Supporter(
                first_name="P", last_name="Q", email="p@example.org", postcode="GU11 1AA"
            ),
        )
    )
    publish_raw(amqp_url, exchange, "signature.confirmed", failing.to_json())
    publish_raw(amqp_url, exchange, "signature.confirmed", b"\x00 not json {")
    unknown = failing.model_copy(update={"id": uuid.uuid4(), "version": 99})
    publish_raw(amqp_url, exchange, "signature.confirmed", unknown.to_json())

    post_signatures(system.base_url, "guardians-for-children", [make_signature() for _ in range(N)])
    confirmations = mail.handler.wait_for(N, timeout=60)
    with httpx.Client(timeout=10) as client:
        for caught in confirmations[:N]:
            assert confirm_email(caught.message, client).status_code == 200
    mail.handler.wait_for(3 * N, timeout=60)  # confirmations, letters and copies
    with engine.connect() as conn:
        resolved_at = conn.execute(sa.text("SELECT max(resolved_at) FROM resolutions")).scalar_one()
        assert conn.execute(sa.text("SELECT count(*) FROM resolutions")).scalar_one() == N

    dlq = topology.dead_letter_queue("resolver")
    dead: list = []
    wait_until(
        lambda: dead.extend(get_all(amqp_url, dlq)) or len(dead) >= 3,
        60,
        message="three poison messages in the dead-letter queue",
    )
    assert len(dead) == 3
    by_body = {body: props for props, body in dead}
    handler_failure = by_body[failing.to_json()]
    assert handler_failure.headers[ATTEMPT_HEADER] == 3
    assert "DataError" in handler_failure.headers[ERROR_HEADER]
    assert "BadEvent" in by_body[b"\x00 not json {"].headers[ERROR_HEADER]
    assert "UnknownEvent" in by_body[unknown.to_json()].headers[ERROR_HEADER]
    # The good signatures were all resolved while the failing one was still being retried.
    dead_lettered_at = datetime.fromisoformat(handler_failure.headers["x-dearmp-dead-lettered-at"])
    assert resolved_at < dead_lettered_at
    assert len([c for c in mail.messages if "letter." in str(c.message["Message-ID"])]) == N
