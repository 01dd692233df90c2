"""The outbox relay: several relays at once publish every row exactly once; unroutable rows stay."""

from __future__ import annotations

import threading
import uuid

import sqlalchemy as sa

from shared import outbox
from shared.broker.declare import declare_all
from shared.broker.publisher import ConfirmingPublisher
from shared.messages import LetterSent, SignatureReceived, Supporter
from shared.topology import BINDINGS, Topology
from tests.conftest import ALL_TEST_DELAYS
from tests.support import get_all, wait_until

N = 3000


def _events(n: int) -> list[tuple[SignatureReceived, str]]:
    supporter = Supporter(first_name="A", last_name="B", email="a@example.org", postcode="GU11 1AA")
    out = []
    for _ in range(n):
        sid = uuid.uuid4()
        out.append(
            (SignatureReceived(signature_id=sid, campaign="c", supporter=supporter), str(sid))
        )
    return out


def test_two_relays_publish_every_row_exactly_once(engine, amqp_url, namespace) -> None:
    topology = Topology(namespace)
    declare_all(amqp_url, topology, ALL_TEST_DELAYS)
    with engine.begin() as conn:
        outbox.add_many(conn, _events(N))  # type: ignore[arg-type]
    stopping = threading.Event()
    relays = [
        outbox.Relay(
            engine, ConfirmingPublisher(amqp_url, topology.events_exchange), batch_size=200
        )
        for _ in range(2)
    ]
    threads = [threading.Thread(target=r.run, args=(stopping, 0.01)) for r in relays]
    for t in threads:
        t.start()
    try:
        assert outbox.wait_until_drained(engine, timeout=60)
    finally:
        stopping.set()
        for t in threads:
            t.join(10)
        for r in relays:
            r.publisher.close()
    messages = []
    wait_until(
        lambda: messages.extend(get_all(amqp_url, topology.queue("mailer"))) or len(messages) >= N,
        30,
        message="every event in the mailer queue",
    )
    ids = [props.message_id for props, _ in messages]
    assert len(ids) == N and len(set(ids)) == N
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one()
            == 0
        )


def test_unroutable_events_are_kept_with_their_error(engine, amqp_url, namespace) -> None:
    topology = Topology(namespace)
    # Only the exchange exists: no queue is bound, so the broker returns the message.
    declare_all(amqp_url, topology, ALL_TEST_DELAYS)
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    for service, keys in BINDINGS.items():  # every queue that takes it
        if LetterSent.TYPE in keys:
            conn.channel().queue_unbind(
                topology.queue(service), topology.events_exchange, LetterSent.TYPE
            )
    conn.close()
    with engine.begin() as db:
        outbox.add(db, LetterSent(signature_id=uuid.uuid4(), purpose="letter", message_id="<m@x>"))
    publisher = ConfirmingPublisher(amqp_url, topology.events_exchange)
    try:
        assert outbox.Relay(engine, publisher).relay_once() == 0
    finally:
        publisher.close()
    with engine.connect() as db:
        row = db.execute(sa.text("SELECT sent_at, attempts, last_error FROM outbox")).one()
    assert row.sent_at is None and row.attempts == 1 and row.last_error == "returned"


def test_prune_removes_only_old_sent_events(engine) -> None:
    from datetime import timedelta

    with engine.begin() as conn:
        outbox.add_many(conn, _events(3))  # type: ignore[arg-type]
        conn.execute(
            sa.text(
                "UPDATE outbox SET sent_at = now() - interval '8 days' WHERE id = (SELECT min(id) FROM outbox)"
            )
        )
        conn.execute(
            sa.text("UPDATE outbox SET sent_at = now() WHERE id = (SELECT max(id) FROM outbox)")
        )
    assert outbox.prune(engine, timedelta(days=7)) == 1
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*), count(sent_at) FROM outbox")).one()
    assert tuple(left) == (2, 1)  # the recent sent row and the unsent one stay


def test_an_idle_relay_keeps_its_connection_alive_with_heartbeats(engine, amqp_url, namespace) -> None:
    """Between batches the relay's publisher answers heartbeats: idle for several heartbeat
    intervals, it publishes the next event on the same connection (the broker closed it before,
    and the next batch had to reconnect)."""
    topology = Topology(namespace)
    declare_all(amqp_url, topology, ALL_TEST_DELAYS)
    publisher = ConfirmingPublisher(amqp_url, topology.events_exchange, heartbeat=1)
    relay = outbox.Relay(engine, publisher)
    stopping = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stopping, 0.05))
    thread.start()
    try:
        with engine.begin() as conn:
            outbox.add_many(conn, _events(1))  # type: ignore[arg-type]
        assert outbox.wait_until_drained(engine, timeout=30)
        first = publisher._conn
        assert first is not None
        stopping.wait(5)  # five heartbeat intervals with nothing to publish
        with engine.begin() as conn:
            outbox.add_many(conn, _events(1))  # type: ignore[arg-type]
        assert outbox.wait_until_drained(engine, timeout=30)
        assert publisher._conn is first, "the connection was lost while idle"
    finally:
        stopping.set()
        thread.join(10)
        publisher.close()
