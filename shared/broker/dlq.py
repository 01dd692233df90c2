"""Dead-letter queues: list what is in them and replay it (``dearmp dlq``, the staff DLQ page).

Nothing here ever returns a message to a queue with a nack or a closed channel: a quorum queue
counts such returns towards its delivery limit (RabbitMQ 4 sets one by default and then drops the
message, and a DLQ has nowhere to dead-letter it to). Instead every message read is published
again, with publisher confirms, and acked from where it was only after the broker confirmed the
copy. If the process dies in between, the message is still there (possibly twice: consumers are
idempotent), never lost.

- ``list_dead_letters`` reads messages from the head of the DLQ and puts each back at its tail,
  unchanged; a full listing leaves the queue in its original order.
- ``replay`` moves every message that was in the DLQ when it started to the service's queue,
  with the attempt counters and error reset, so the service tries it afresh. Messages that are
  dead-lettered again while it runs are left for the next replay (it cannot loop forever).
Only the envelope's id, type and correlation id (the signature's id through its journey) are read
from a body, and of its payload only ``campaign`` (a slug, so the staff pages show an organisation
the dead letters of its campaigns), never the rest (personal data), except by
``drop_messages_about``, which an erasure uses to find the person's messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties

from shared.broker.consumer import ATTEMPT_HEADER, ERROR_HEADER, TRANSIENT_HEADER, copy_props
from shared.broker.declare import connection_parameters
from shared.supporters import event_names, normalise_email
from shared.topology import SERVICES, Topology

DEAD_LETTERED_AT = "x-dearmp-dead-lettered-at"
REPLAYED_HEADER = "x-dearmp-replayed"
# Headers that describe the failed attempts; a replayed message starts without them.
_RESET = (
    ATTEMPT_HEADER,
    TRANSIENT_HEADER,
    ERROR_HEADER,
    DEAD_LETTERED_AT,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
)


class UnknownQueue(ValueError):
    """A name that is neither a service nor one of its queues."""


class QueueMissing(RuntimeError):
    """The queue is not declared on the broker (the service has never started here)."""


class BrokerUnavailable(RuntimeError):
    pass


class ReplayStopped(RuntimeError):
    """The broker did not take a copy or went away: ``moved`` were moved, the rest stay."""

    def __init__(self, moved: int, reason: str):
        super().__init__(f"replay stopped after {moved} messages: {reason}")
        self.moved = moved


def service_for(name: str, topology: Topology) -> str:
    """``mailer``, ``dearmp.mailer`` and ``dearmp.mailer.dlq`` all name the mailer."""
    wanted = (name or "").strip()
    for service in SERVICES:
        if wanted in (service, topology.queue(service), topology.dead_letter_queue(service)):
            return service
    raise UnknownQueue(
        f"unknown queue {name!r}: give a service ({', '.join(SERVICES)}) or a queue name "
        f"such as {topology.dead_letter_queue('mailer')}"
    )


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    type: str
    attempts: int
    error: str
    dead_lettered_at: str | None
    correlation_id: str | None = None  # the signature id, for events of a signature's journey
    campaign: str | None = None  # the payload's campaign slug, when it names one

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def describe(props: BasicProperties, body: bytes) -> DeadLetter:
    """What staff may see of a dead letter: ids, type, attempts, the error, the campaign; not the
    rest of the payload."""
    headers = dict(props.headers or {})
    event_id, event_type = props.message_id or "", props.type or ""
    correlation_id = campaign = None
    try:
        envelope = json.loads(body)
        if isinstance(envelope, dict):
            event_id = str(envelope.get("id") or event_id)[:64]
            event_type = str(envelope.get("type") or event_type)[:100]
            if isinstance(envelope.get("correlation_id"), str):
                correlation_id = envelope["correlation_id"][:64]
            payload = envelope.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("campaign"), str):
                campaign = payload["campaign"][:100]
    except (ValueError, UnicodeDecodeError):
        pass
    error = _text(headers.get(ERROR_HEADER, ""))
    when = headers.get(DEAD_LETTERED_AT)
    deaths = headers.get("x-death")
    if not error and isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        # Dead-lettered by the broker itself (the service queue's delivery limit).
        error = f"broker: {_text(deaths[0].get('reason', 'dead-lettered'))}"
        when = when or deaths[0].get("time")
    attempts = headers.get(ATTEMPT_HEADER) or headers.get("x-delivery-count") or 1
    return DeadLetter(
        event_id=event_id or "?",
        type=event_type or "?",
        attempts=int(attempts) if str(attempts).isdigit() else 1,
        error=error or "?",
        dead_lettered_at=when.isoformat()
        if isinstance(when, datetime)
        else _text(when or "") or None,
        correlation_id=correlation_id,
        campaign=campaign,
    )


@contextmanager
def confirming_channel(amqp_url: str, name: str = "dearmp-dlq") -> Iterator[BlockingChannel]:
    try:
        conn = pika.BlockingConnection(connection_parameters(amqp_url, name=name))
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise BrokerUnavailable(f"cannot reach RabbitMQ ({type(exc).__name__})") from None
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        yield channel
    finally:
        if conn.is_open:
            try:
                conn.close()
            except (pika.exceptions.AMQPError, OSError):
                pass


def _depth_or_fail(channel: BlockingChannel, queue: str) -> int:
    try:
        return int(channel.queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            raise QueueMissing(f"queue {queue} does not exist (has the service run?)") from None
        raise


def list_dead_letters(
    amqp_url: str, topology: Topology, service: str, *, limit: int | None = None
) -> tuple[int, list[DeadLetter]]:
    """(depth, the first ``limit`` dead letters) of ``service``'s DLQ; each read message is put
    back at the tail with confirms before it is acked."""
    dlq = topology.dead_letter_queue(service)
    out: list[DeadLetter] = []
    with confirming_channel(amqp_url) as channel:
        depth = _depth_or_fail(channel, dlq)
        for _ in range(depth if limit is None else min(depth, limit)):
            method, props, body = channel.basic_get(dlq, auto_ack=False)
            if method is None:
                break
            out.append(describe(props, body))
            channel.basic_publish("", dlq, body, props, mandatory=True)
            channel.basic_ack(method.delivery_tag)
    return depth, out


def _replay_props(props: BasicProperties) -> BasicProperties:
    headers = {k: v for k, v in dict(props.headers or {}).items() if k not in _RESET}
    headers[REPLAYED_HEADER] = int(headers.get(REPLAYED_HEADER) or 0) + 1
    return copy_props(props, headers)


def replay(
    amqp_url: str,
    topology: Topology,
    service: str,
    *,
    on_moved: Callable[[int], None] | None = None,
) -> int:
    """Move what is in ``service``'s DLQ back to its queue; return how many were moved."""
    dlq, queue = topology.dead_letter_queue(service), topology.queue(service)
    moved = 0
    with confirming_channel(amqp_url) as channel:
        _depth_or_fail(channel, queue)
        for _ in range(_depth_or_fail(channel, dlq)):
            try:
                method, props, body = channel.basic_get(dlq, auto_ack=False)
                if method is None:
                    break
                # Raises unless the broker confirmed the copy; the original, not acked, then
                # stays in the DLQ.
                channel.basic_publish("", queue, body, _replay_props(props), mandatory=True)
                channel.basic_ack(method.delivery_tag)
            except (pika.exceptions.AMQPError, OSError) as exc:
                raise ReplayStopped(
                    moved, f"{type(exc).__name__}; the rest stay in {dlq}"
                ) from None
            moved += 1
            if on_moved:
                on_moved(moved)
    return moved


def drop_messages_about(
    amqp_url: str, topology: Topology, email: str, retry_delays: list[int]
) -> dict[str, int]:
    """Erasure: remove from every queue of every service (its main queue, its dead-letter queue
    and its retry queues) the messages whose event names the person. A consumer would refuse
    them (made before the erasure), but until then their personal data would sit in the broker:
    for ever in a DLQ, and for as long as a service is stopped in its main queue. Every other
    message read is published back to the same queue with confirms before it is acked (as
    ``list_dead_letters`` does): a retry queue's message so waits its delay again, and a main
    queue's goes to the back (order does not matter: consumers are idempotent and a state
    never goes backwards). Messages a consumer holds unacked are not seen here; it refuses
    them. Returns {queue: messages dropped}, for the queues that had any."""
    address = normalise_email(email)
    dropped: dict[str, int] = {}
    with confirming_channel(amqp_url, "dearmp-erasure") as channel:
        for service in SERVICES:
            queues = [topology.queue(service), topology.dead_letter_queue(service)]
            queues += [topology.retry_queue(service, d) for d in retry_delays]
            for queue in queues:
                try:
                    depth = _depth_or_fail(channel, queue)
                except QueueMissing:
                    channel = channel.connection.channel()  # the 404 closed the channel
                    channel.confirm_delivery()
                    continue
                for _ in range(depth):
                    method, props, body = channel.basic_get(queue, auto_ack=False)
                    if method is None:
                        break
                    if _names(body, address):
                        dropped[queue] = dropped.get(queue, 0) + 1
                    else:
                        channel.basic_publish("", queue, body, props, mandatory=True)
                    channel.basic_ack(method.delivery_tag)
    return dropped


def _names(body: bytes, address: str) -> bool:
    try:
        payload = json.loads(body).get("payload")
    except (ValueError, AttributeError):
        return False  # not an envelope: it names nobody we can tell
    return isinstance(payload, dict) and event_names(payload, address)


def dead_letter_depths(amqp_url: str, topology: Topology) -> dict[str, int | None]:
    """Each service's DLQ depth (None: not declared)."""
    out: dict[str, int | None] = {}
    with confirming_channel(amqp_url, "dearmp-dlq-depth") as channel:
        for service in SERVICES:
            try:
                out[service] = _depth_or_fail(channel, topology.dead_letter_queue(service))
            except QueueMissing:
                out[service] = None
                channel = channel.connection.channel()  # the 404 closed the channel
    return out
