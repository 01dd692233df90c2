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

import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
import psycopg
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties
from sqlalchemy.exc import InterfaceError, OperationalError

from shared import faults
from shared.broker.declare import connection_parameters, declare_service, rotate
from shared.logging import bound_context, error_detail, get_logger
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
        handback_after: float = 5.0,
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
        self.handback_after = handback_after
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
                self._params = rotate(self._params)  # a cluster: the other nodes first
                log.warning(
                    "broker connection lost, reconnecting",
                    queue=self.queue,
                    error=type(exc).__name__,
                    retry_in=backoff,
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 15)

    def _consume(self) -> None:
        """One connection's life. This thread only does the broker's work: it receives messages,
        answers heartbeats and settles (acks, retries, dead-letters) what the handler thread has
        finished. The handler thread handles one message at a time, in order, for as long as the
        handler takes (a mail server may take minutes to answer), and hands each outcome back
        through ``add_callback_threadsafe`` (pika's pattern for work off the connection's
        thread), so the broker never sees this consumer go quiet and never hands its message to
        another replica meanwhile."""
        conn = pika.BlockingConnection(self._params)
        session = _Session(conn)
        worker: threading.Thread | None = None
        try:
            channel = conn.channel()
            declare_service(channel, self._topology, self.service, self._retry_delays)
            channel.basic_qos(prefetch_count=self._prefetch)
            publish_channel = conn.channel()
            publish_channel.confirm_delivery()
            session.channel, session.publish = channel, publish_channel
            worker = threading.Thread(
                target=self._work, args=(session,), daemon=True, name=f"{self.service}-handler"
            )
            worker.start()
            session.consume = lambda: channel.basic_consume(
                self.queue,
                lambda _ch, method, props, body: session.work.put((method, props, body)),
            )
            session.consumer_tag = session.consume()
            self.connected.set()
            log.info("consuming", queue=self.queue)
            while not self._stopping.is_set() and worker.is_alive():
                conn.process_data_events(time_limit=0.5)
                self._hand_back_if_stalled(session)
            if not session.handed_back:
                channel.basic_cancel(session.consumer_tag)
            # The message being handled finishes and is settled; the ones received but not yet
            # handled go back to the queue when the channel closes (they were never acked).
            session.work.put(None)
            while worker.is_alive():
                conn.process_data_events(time_limit=0.2)
            conn.process_data_events(time_limit=0)
            session.ack_now()
            log.info("stopped consuming", queue=self.queue)
        finally:
            self.connected.clear()
            session.closed = True
            session.work.put(None)
            if worker is not None:
                # It may be in the middle of a send: wait for it (its outcome is not settled on
                # this connection; the broker redelivers the message, and the handler's own guard
                # makes that harmless). No second handler thread ever runs beside it.
                worker.join()
            if conn.is_open:
                try:
                    conn.close()
                except BROKER_ERRORS:
                    pass

    def _work(self, session: _Session) -> None:
        """The handler thread: handle each message, then have it settled on the connection's
        thread. Stops at a ``None``, or once the consumer is stopping or the connection gone."""
        while True:
            item = session.work.get()
            if item is None or session.closed or self._stopping.is_set():
                return
            method, props, body = item
            session.busy_since = time.monotonic()
            outcome = self._outcome(props, body)
            session.busy_since = None
            settle = functools.partial(
                self._settle, session, method.delivery_tag, props, body, outcome
            )
            try:
                session.conn.add_callback_threadsafe(settle)
            except BROKER_ERRORS:
                return  # the connection is gone: the broker will redeliver the message

    def _hand_back_if_stalled(self, session: _Session) -> None:
        """While the handler has been on one message for ``handback_after`` seconds (a mail
        server taking minutes to answer), the messages received behind it go back to the queue
        for the other consumers and replicas, and no more come here until it is done: one
        stalled send holds up nobody else's."""
        busy = session.busy_since
        if busy is None or time.monotonic() - busy < self.handback_after:
            return
        channel = session.channel
        assert channel is not None
        if not session.handed_back:
            # Cancelled, this consumer gets nothing more (pika nacks what it had received but
            # not yet dispatched); acking the message in hand still works on the channel.
            channel.basic_cancel(session.consumer_tag)
            session.handed_back = True
            log.info("handler busy: messages behind it handed back", queue=self.queue)
        while True:
            try:
                item = session.work.get_nowait()
            except queue.Empty:
                return
            if item is None:
                session.work.put(None)
                return
            channel.basic_nack(item[0].delivery_tag, multiple=False, requeue=True)

    def _outcome(self, props: BasicProperties, body: bytes) -> _Outcome:
        """Run the handler (on the handler thread) and say what should become of the message."""
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
            outcome = _Outcome("ok", event_type, headers)
        except (BadEvent, UnknownEvent, PermanentFailure) as exc:
            outcome = _Outcome("dead_lettered", event_type, headers, reason=_reason(exc))
        except (TransientFailure, *DATABASE_UNREACHABLE) as exc:
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
            outcome = _Outcome("retried", event_type, headers, tier=tier, exc=exc)
        except Exception as exc:
            if attempt >= self._max_attempts:
                log.exception("handler failed for the last time", queue=self.queue, attempt=attempt)
                outcome = _Outcome("dead_lettered", event_type, headers, reason=_reason(exc))
            else:
                headers[ATTEMPT_HEADER] = attempt + 1
                tier = attempt - 1 + transient
                outcome = _Outcome("retried", event_type, headers, tier=tier, exc=exc)
        HANDLER_SECONDS.labels(self.queue, event_type).observe(time.perf_counter() - started)
        return outcome

    def _settle(
        self,
        session: _Session,
        delivery_tag: int,
        props: BasicProperties,
        body: bytes,
        outcome: _Outcome,
    ) -> None:
        """On the connection's thread: publish a retry or dead letter (confirmed), then ack.
        Acks go together: up to half the prefetch in one frame while more messages wait to be
        handled, at once when none does."""
        if session.closed or not session.conn.is_open:
            return
        publish = session.publish
        assert publish is not None
        if outcome.kind == "dead_lettered":
            self._dead_letter(publish, props, body, outcome.headers, outcome.reason)
        elif outcome.kind == "retried":
            assert outcome.exc is not None
            self._retry(publish, props, body, outcome.headers, tier=outcome.tier, exc=outcome.exc)
        MESSAGES.labels(self.queue, outcome.event_type, outcome.kind).inc()
        if session.handed_back and not self._stopping.is_set():
            session.consumer_tag = session.consume()  # free again: take messages once more
            session.handed_back = False
        faults.point("before_ack")
        session.handled, session.last_tag = session.handled + 1, delivery_tag
        if session.handled >= self._ack_every or session.work.empty():
            session.ack_now()

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
            detail=error_detail(exc),
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


@dataclass
class _Outcome:
    """What the handler thread decided for one message; settled on the connection's thread."""

    kind: str  # ok | retried | dead_lettered
    event_type: str
    headers: dict[str, object]
    tier: int = 0
    exc: Exception | None = None
    reason: str = ""


class _Session:
    """One connection's state, shared by its thread and its handler thread."""

    def __init__(self, conn: pika.BlockingConnection) -> None:
        self.conn = conn
        self.channel: BlockingChannel | None = None
        self.publish: BlockingChannel | None = None
        self.work: queue.SimpleQueue[tuple[Any, BasicProperties, bytes] | None] = (
            queue.SimpleQueue()
        )
        self.closed = False
        self.handled = 0
        self.last_tag = 0
        self.busy_since: float | None = None  # when the handler took its current message
        self.handed_back = False  # consumer cancelled while the handler is stuck
        self.consumer_tag = ""
        self.consume: Callable[[], str] = lambda: ""

    def ack_now(self) -> None:
        """Ack every message settled so far (connection thread only)."""
        if self.handled and self.channel is not None and self.channel.is_open:
            self.channel.basic_ack(self.last_tag, multiple=True)
        self.handled = 0


def _reason(exc: Exception) -> str:
    """Why a message was dead-lettered, as its header keeps it: no personal data (a database
    error is named by its class and SQLSTATE only: its message can quote the row's values)."""
    return f"{type(exc).__name__}: {error_detail(exc)}"


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
