"""Declare the topology (idempotent; every process declares what it uses at start-up)."""

from __future__ import annotations

import pika
from pika.adapters.blocking_connection import BlockingChannel

from shared.topology import BINDINGS, DELIVERY_LIMIT, Topology


def broker_nodes(url: str) -> list[str]:
    """The node URLs in ``DEARMP_AMQP_URL``: one, or several separated by commas (the nodes of
    a RabbitMQ cluster, e.g. ``amqp://u:p@rabbit1:5672/%2F,amqp://u:p@rabbit2:5672/%2F``)."""
    nodes = [part.strip() for part in url.split(",") if part.strip()]
    if not nodes:
        raise ValueError("no RabbitMQ address given")
    return nodes


def connection_parameters(
    url: str, *, heartbeat: int = 30, name: str = "dearmp"
) -> list[pika.URLParameters]:
    """Parameters for each node, in the order to try them (pika's ``BlockingConnection`` takes
    the list and connects to the first that answers). With a cluster, any node will do: a
    quorum queue's leader may be on another node, which serves its clients through this one,
    and when a node goes the clients reconnect to the next (``rotate``)."""
    out = []
    for node in broker_nodes(url):
        params = pika.URLParameters(node)
        params.heartbeat = heartbeat
        params.blocked_connection_timeout = 60
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.client_properties = {"connection_name": name}
        out.append(params)
    return out


def rotate(params: list[pika.URLParameters]) -> list[pika.URLParameters]:
    """The same nodes, starting from the next one: after a connection is lost, try the others
    before the node that failed."""
    return params[1:] + params[:1]


def declare_exchanges(channel: BlockingChannel, topology: Topology) -> None:
    channel.exchange_declare(topology.events_exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(topology.dead_letter_exchange, exchange_type="direct", durable=True)


def declare_service(
    channel: BlockingChannel, topology: Topology, service: str, retry_delays: list[int]
) -> None:
    """The service's quorum queue and bindings, its retry tiers and its dead-letter queue."""
    declare_exchanges(channel, topology)
    queue = topology.queue(service)
    dlq = topology.dead_letter_queue(service)
    channel.queue_declare(dlq, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(dlq, topology.dead_letter_exchange, routing_key=dlq)
    channel.queue_declare(
        queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": dlq,
        },
    )
    for routing_key in BINDINGS[service]:
        channel.queue_bind(queue, topology.events_exchange, routing_key=routing_key)
    for delay in retry_delays:
        # A quorum queue too: replicated in a cluster like the rest, and a message whose delay
        # runs out is moved to the service's queue at least once (a classic queue's expiry is
        # at-most-once: a retry expiring while the broker restarted was lost, found by the
        # soak). At-least-once dead-lettering needs reject-publish overflow.
        channel.queue_declare(
            topology.retry_queue(service, delay),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )


def declare_all(url: str, topology: Topology, retry_delays: list[int]) -> None:
    conn = pika.BlockingConnection(connection_parameters(url, name="dearmp-declare"))
    try:
        channel = conn.channel()
        for service in BINDINGS:
            declare_service(channel, topology, service, retry_delays)
    finally:
        conn.close()


def delete_all(url: str, topology: Topology, retry_delays: list[int]) -> None:
    """Remove a namespace's queues and exchanges (tests clean up with this)."""
    conn = pika.BlockingConnection(connection_parameters(url, name="dearmp-cleanup"))
    try:
        channel = conn.channel()
        for name in topology.all_queues(retry_delays):
            channel.queue_delete(name)
        channel.exchange_delete(topology.events_exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
    finally:
        conn.close()
