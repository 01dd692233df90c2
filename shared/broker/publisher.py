"""A publisher that sends a batch with publisher confirms and ``mandatory``, then waits once.

pika's BlockingChannel waits for the broker's confirm after every single publish, which caps a
relay at one round trip per event. This publisher drives a ``SelectConnection`` synchronously:
it writes the whole batch, then runs the I/O loop until every delivery tag is acked, nacked or
returned (RabbitMQ sends a ``basic.return`` before the confirm of an unroutable message).
Not thread-safe: one publisher per thread.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from enum import Enum

import pika
from pika.adapters.select_connection import SelectConnection
from pika.spec import Basic, BasicProperties

from shared.broker.declare import connection_parameters, rotate

# Frames queued for the socket are joined into chunks of about this size before a batch is sent.
_WRITE_CHUNK = 256 * 1024


class PublishError(ConnectionError):
    """The broker went away or did not confirm in time; nothing in the batch counts as sent."""


class Outcome(str, Enum):
    CONFIRMED = "confirmed"
    RETURNED = "returned"  # unroutable: no queue is bound for its routing key
    NACKED = "nacked"


@dataclass(frozen=True)
class Message:
    routing_key: str
    body: bytes
    message_id: str
    type: str = ""
    correlation_id: str | None = None
    headers: dict[str, object] | None = None


class ConfirmingPublisher:
    def __init__(self, url: str, exchange: str, *, heartbeat: int = 30, timeout: float = 30.0):
        self._params = connection_parameters(url, heartbeat=heartbeat, name="dearmp-publisher")
        self._exchange = exchange
        self._timeout = timeout
        self._conn: SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        self._error: str | None = None
        self._next_tag = 0
        # The batch in flight holds delivery tags first_tag .. first_tag + len - 1 (one channel,
        # tags count up from 1), so a tag maps to its message by subtraction. Confirms are
        # tracked with a flag per message and a floor below which a ``multiple`` ack settled
        # everything: each confirm costs what it settles, not the size of the batch.
        self._first_tag = 1
        self._settled = bytearray()
        self._floor = 0
        self._unsettled = 0
        self._outcomes: list[Outcome] = []
        self._index_by_id: dict[str, int] = {}

    # -- connection --------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return bool(self._conn and self._conn.is_open and self._channel and self._channel.is_open)

    def connect(self) -> None:
        """Open a connection and a confirming channel on the first node that answers. After a
        failure (here or on the last connection) the nodes are tried from the next one, so a
        cluster's clients leave a node that went away."""
        failed = self._error is not None
        self.close()
        for _ in range(len(self._params)):
            if failed:
                self._params = rotate(self._params)
            self._error = None
            self._conn = SelectConnection(
                self._params[0],  # SelectConnection takes one node at a time
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_failure,
                on_close_callback=self._on_failure,
            )
            self._run_until(lambda: self._channel is not None or self._error is not None)
            if self._channel is not None and self._error is None:
                return
            failed = True
            self.close()
        raise PublishError(f"cannot open publisher: {self._error}")

    def _on_connection_open(self, conn: SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        channel.add_on_close_callback(self._on_failure)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(
            self._on_confirm, callback=lambda _frame: self._set_channel(channel)
        )

    def _set_channel(self, channel: pika.channel.Channel) -> None:
        self._next_tag = 0
        self._channel = channel
        if self._conn is not None:
            self._conn.ioloop.stop()

    def _on_failure(self, _obj: object, reason: object = None) -> None:
        self._error = str(reason or "connection closed")
        self._channel = None
        if self._conn is not None:
            self._conn.ioloop.stop()

    def idle(self, seconds: float) -> None:
        """Wait ``seconds`` with the connection's I/O loop running, so heartbeats are sent and
        answered while there is nothing to publish (otherwise the broker closes a connection
        that stays quiet for two heartbeat intervals, and the next batch has to reconnect)."""
        if not self.is_open:
            time.sleep(seconds)
            return
        self._run_until(lambda: False, timeout=seconds)

    def close(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
            self._run_until(lambda: self._conn is None or self._conn.is_closed, timeout=5)
        self._conn = None
        self._channel = None

    # -- publishing ----------------------------------------------------------------------------
    def publish_batch(self, messages: list[Message]) -> list[Outcome]:
        """Publish every message; return one outcome each. Raises PublishError if the connection
        fails or confirms do not arrive in time (then the caller must treat none as sent)."""
        if not self.is_open:
            self.connect()
        assert self._channel is not None
        self._outcomes = [Outcome.CONFIRMED] * len(messages)
        self._index_by_id = {}
        self._first_tag = self._next_tag + 1
        self._floor = self._next_tag
        self._settled = bytearray(len(messages))
        self._unsettled = len(messages)
        for i, msg in enumerate(messages):
            props = BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=msg.message_id,
                type=msg.type or msg.routing_key,
                correlation_id=msg.correlation_id,
                headers=msg.headers,
            )
            self._channel.basic_publish(
                self._exchange, msg.routing_key, msg.body, props, mandatory=True
            )
            self._next_tag += 1
            self._index_by_id[msg.message_id] = i
        self._coalesce_writes()
        self._run_until(lambda: not self._unsettled or self._error is not None)
        if self._unsettled:
            reason = self._error or "timed out waiting for publisher confirms"
            self.close()
            raise PublishError(reason)
        return self._outcomes

    def _coalesce_writes(self) -> None:
        """Join the frames pika queued for the socket into a few large chunks.

        pika buffers every frame (three per message: method, header, body) as its own chunk and
        its I/O loop sends each with its own ``send()``: a batch of 500 cost 1,500 system calls,
        the largest single cost of the relay when profiled. Nothing has been sent yet when this
        runs (pika writes only from the I/O loop), so the bytes and their order are unchanged.
        This reaches into pika's transport; if its internals differ, it does nothing and pika
        sends frame by frame as before.
        """
        transport = getattr(self._conn, "_transport", None)
        buffers = getattr(transport, "_tx_buffers", None)
        if not isinstance(buffers, deque) or len(buffers) < 2:
            return
        chunks: list[bytes] = []
        current: list[bytes] = []
        size = 0
        for data in buffers:
            current.append(data)
            size += len(data)
            if size >= _WRITE_CHUNK:
                chunks.append(b"".join(current))
                current, size = [], 0
        if current:
            chunks.append(b"".join(current))
        buffers.clear()
        buffers.extend(chunks)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tag = method.delivery_tag
        nack = isinstance(method, Basic.Nack)
        first, size = self._first_tag, len(self._settled)
        if method.multiple:
            for t in range(max(self._floor + 1, first), min(tag, first + size - 1) + 1):
                self._settle(t - first, nack)
            self._floor = max(self._floor, tag)
        elif first <= tag < first + size:
            self._settle(tag - first, nack)
        if not self._unsettled and self._conn is not None:
            self._conn.ioloop.stop()

    def _settle(self, index: int, nack: bool) -> None:
        if not self._settled[index]:
            self._settled[index] = 1
            self._unsettled -= 1
            if nack:
                self._outcomes[index] = Outcome.NACKED

    def _on_return(
        self, _ch: object, _method: object, props: BasicProperties, _body: bytes
    ) -> None:
        index = self._index_by_id.get(props.message_id or "")
        if index is not None:
            self._outcomes[index] = Outcome.RETURNED

    def _run_until(self, done, timeout: float | None = None) -> None:  # type: ignore[no-untyped-def]
        if self._conn is None or done():
            return
        ioloop = self._conn.ioloop
        expired = []

        def expire() -> None:
            expired.append(True)
            ioloop.stop()

        timer = ioloop.call_later(timeout or self._timeout, expire)
        while not done() and not expired and self._conn is not None and self._error is None:
            ioloop.start()  # returns when a callback (or the timer) stops it
        if not expired:
            ioloop.remove_timeout(timer)
