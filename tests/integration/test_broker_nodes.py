"""Several RabbitMQ nodes in DEARMP_AMQP_URL (a cluster): the publisher and the consumers connect
to a node that answers, and after losing one they try the others first. Here the first node is
a port where nothing listens, so every connection must go on to the second."""

from __future__ import annotations

import threading

from shared.broker.consumer import Consumer
from shared.broker.declare import broker_nodes, declare_all
from shared.broker.publisher import ConfirmingPublisher, Message, Outcome
from shared.messages import Envelope
from shared.topology import Topology
from tests.conftest import ALL_TEST_DELAYS
from tests.integration.test_dlq import received
from tests.support import free_port


def test_a_dead_node_first_in_the_list_is_passed_over(amqp_url, namespace) -> None:
    nodes = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F,{amqp_url}"
    assert broker_nodes(nodes)[1] == amqp_url
    topology = Topology(namespace)
    declare_all(nodes, topology, ALL_TEST_DELAYS)

    handled: list[Envelope] = []
    consumer = Consumer(
        service="mailer",
        amqp_url=nodes,
        handle=handled.append,
        topology=topology,
        retry_delays=ALL_TEST_DELAYS,
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    publisher = ConfirmingPublisher(nodes, topology.events_exchange)
    try:
        assert consumer.connected.wait(30)
        envelope = received()
        message = Message(envelope.type, envelope.to_json(), str(envelope.id), type=envelope.type)
        assert publisher.publish_batch([message]) == [Outcome.CONFIRMED]
        deadline = threading.Event()
        for _ in range(100):
            if handled:
                break
            deadline.wait(0.1)
        assert [e.id for e in handled] == [envelope.id]
    finally:
        publisher.close()
        consumer.stop()
        thread.join(30)
