"""A resilient pika consumer: decode → dispatch → ack, with retries and dead letters around it.

- Manual ack, only after the handler returned (it has committed its transaction by then).
- A failing message is republished to a delay queue (growing TTL tiers) with its attempt count,
  then acked; after ``max_attempts`` it goes to the service's dead-letter queue with the reason.
  Undecodable messages and unknown event versions go to the dead-letter queue at once. The queue
  keeps flowing meanwhile: a poison message never blocks others.
- Transient infrastructure failures (database away, SMTP 4xx) are retried without using up the
  attempts, so an outage delays work but never dead-letters it.
- The broker going away ends the connection; ``run()`` reconnects with backoff. Unacked messages
  are redelivered by the broker, and the idempotent handlers make that harmless.
- ``stop()`` (wired to SIGTERM) stops consuming; the in-flight message finishes and is acked.
Each Consumer owns one connection and must run in one thread (pika is not thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pika
import pika.exceptions
import psycopg
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties
from sqlalchemy.exc import InterfaceError, OperationalError

from shared import faults
from shared.broker.declare import connection_parameters, declare_service
from shared.logging import bound_context, get_logger, redact_text
from shared.messages import BadEvent, Envelope, UnknownEvent
from shared.metrics import HANDLER_SECONDS, MESSAGES
from shared.topology import Topology

log = get_logger(__name__)

ATTEMPT_HEADER = "x-dearmp-attempt"
TRANSIENT_HEADER = "x-dearmp-transient"
ERROR_HEADER = "x-dearmp-error"


class PermanentFailure(Exception):
    """The handler knows retrying cannot help: dead-letter now."""


class TransientFailure(Exception):
    """A dependency is away (SMTP 4xx, remote API down): retry later without using up attempts.
    ``retry_after`` (seconds), when the dependency said, picks the first delay tier that long."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


Handler = Callable[[Envelope], None]

BROKER_ERRORS = (pika.exceptions.AMQPError, ConnectionError, OSError)
# The database could not be reached (through SQLAlchemy, or psycopg used directly): retried
# without using up the event's attempts, like any dependency that is briefly away.
DATABASE_UNREACHABLE = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class Consumer:
    def __init__(
        self,
        *,
        service: str,
        amqp_url: str,
        handle: Handler,
        topology: Topology,
        retry_delays: list[int],
        max_attempts: int = 5,
        prefetch: int = 16,
        heartbeat: int = 30,
    ) -> None:
        self.service = service
        self.queue = topology.queue(service)
        self._params = connection_parameters(
            amqp_url, heartbeat=heartbeat, name=f"dearmp-{service}"
        )
        self._handle = handle
        self._topology = topology
        self._retry_delays = retry_delays or [1000]
        self._max_attempts = max_attempts
        self._prefetch = prefetch
        self._ack_every = max(1, prefetch // 2)
        self._stopping = threading.Event()
        self.connected = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._consume()
                backoff = 0.5
            except BROKER_ERRORS as exc:
                self.connected.clear()
                log.warning(
                    "broker connection lost, reconnecting",
                    queue=self.queue,
                    error=type(exc).__name__,
                    retry_in=backoff,
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 15)

    def _consume(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            channel = conn.channel()
            declare_service(channel, self._topology, self.service, self._retry_delays)
            channel.basic_qos(prefetch_count=self._prefetch)
            publish_channel = conn.channel()
            publish_channel.confirm_delivery()
            self.connected.set()
            log.info("consuming", queue=self.queue)
            # Acknowledged after their commits, together: while more messages are already here,
            # up to half the prefetch are acked in one frame; before waiting, at once.
            handled, last_tag = 0, 0
            for method, props, body in channel.consume(self.queue, inactivity_timeout=0.5):
                if self._stopping.is_set():
                    break
                if method is None:
                    continue
                self._on_message(publish_channel, props, body)
                faults.point("before_ack")
                handled, last_tag = handled + 1, method.delivery_tag
                if handled >= self._ack_every or not channel.get_waiting_message_count():
                    channel.basic_ack(last_tag, multiple=True)
                    handled = 0
            if handled:
                channel.basic_ack(last_tag, multiple=True)
            channel.cancel()  # returns prefetched, unhandled messages to the queue
            log.info("stopped consuming", queue=self.queue)
        finally:
            self.connected.clear()
            if conn.is_open:
                try:
                    conn.close()
                except BROKER_ERRORS:
                    pass

    def _on_message(self, publish: BlockingChannel, props: BasicProperties, body: bytes) -> None:
        headers = dict(props.headers or {})
        attempt = int(headers.get(ATTEMPT_HEADER, 1))
        transient = int(headers.get(TRANSIENT_HEADER, 0))
        event_type = props.type or "unknown"
        started = time.perf_counter()
        try:
            envelope = Envelope.from_json(body)
            event_type = envelope.type
            with bound_context(
                event_id=str(envelope.id),
                correlation_id=envelope.correlation_id,
                event_type=envelope.type,
            ):
                self._handle(envelope)
            outcome = "ok"
        except (BadEvent, UnknownEvent, PermanentFailure) as exc:
            outcome = "dead_lettered"
            self._dead_letter(publish, props, body, headers, _reason(exc))
        except (TransientFailure, *DATABASE_UNREACHABLE) as exc:
            outcome = "retried"
            headers[TRANSIENT_HEADER] = transient + 1
            tier = attempt - 1 + transient
            wait = getattr(exc, "retry_after", None)
            if wait:  # honour the dependency's Retry-After: the first tier at least that long
                tier = max(
                    tier,
                    next(
                        (i for i, d in enumerate(self._retry_delays) if d >= wait * 1000),
                        len(self._retry_delays) - 1,
                    ),
                )
            self._retry(publish, props, body, headers, tier=tier, exc=exc)
        except Exception as exc:
            if attempt >= self._max_attempts:
                outcome = "dead_lettered"
                log.exception("handler failed for the last time", queue=self.queue, attempt=attempt)
                self._dead_letter(publish, props, body, headers, _reason(exc))
            else:
                outcome = "retried"
                headers[ATTEMPT_HEADER] = attempt + 1
                self._retry(publish, props, body, headers, tier=attempt - 1 + transient, exc=exc)
        MESSAGES.labels(self.queue, event_type, outcome).inc()
        HANDLER_SECONDS.labels(self.queue, event_type).observe(time.perf_counter() - started)

    def _retry(
        self,
        publish: BlockingChannel,
        props: BasicProperties,
        body: bytes,
        headers: dict[str, object],
        *,
        tier: int,
        exc: Exception,
    ) -> None:
        delay = self._retry_delays[min(tier, len(self._retry_delays) - 1)]
        log.warning(
            "handler failed, will retry",
            queue=self.queue,
            error=type(exc).__name__,
            detail=redact_text(str(exc))[:300],
            delay_ms=delay,
        )
        publish.basic_publish(
            "",
            self._topology.retry_queue(self.service, delay),
            body,
            copy_props(props, headers),
            mandatory=True,
        )

    def _dead_letter(
        self,
        publish: BlockingChannel,
        props: BasicProperties,
        body: bytes,
        headers: dict[str, object],
        reason: str,
    ) -> None:
        log.error("message dead-lettered", queue=self.queue, reason=reason[:300])
        headers[ERROR_HEADER] = reason[:1000]
        headers["x-dearmp-dead-lettered-at"] = datetime.now(UTC).isoformat()
        publish.basic_publish(
            self._topology.dead_letter_exchange,
            self._topology.dead_letter_queue(self.service),
            body,
            copy_props(props, headers),
            mandatory=True,
        )


def _reason(exc: Exception) -> str:
    """Why a message was dead-lettered, as its header keeps it: no personal data (a database
    error's DETAIL and parameters quote the row's values)."""
    return redact_text(f"{type(exc).__name__}: {exc}")


def copy_props(props: BasicProperties, headers: dict[str, object]) -> BasicProperties:
    """A persistent copy of a message's properties with new headers (retries, dead letters,
    replays from the dead-letter queue)."""
    return BasicProperties(
        content_type=props.content_type or "application/json",
        delivery_mode=2,
        message_id=props.message_id,
        correlation_id=props.correlation_id,
        type=props.type,
        headers=headers,
    )


def run_consumers(consumers: list[Consumer]) -> list[threading.Thread]:
    threads = []
    for i, consumer in enumerate(consumers):
        t = threading.Thread(
            target=consumer.run, name=f"{consumer.service}-consumer-{i}", daemon=True
        )
        t.start()
        threads.append(t)
    return threads
