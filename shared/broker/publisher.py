"""A publisher that sends a batch with publisher confirms and ``mandatory``, then waits once.

pika's BlockingChannel waits for the broker's confirm after every single publish, which caps a
relay at one round trip per event. This publisher drives a ``SelectConnection`` synchronously:
it writes the whole batch, then runs the I/O loop until every delivery tag is acked, nacked or
returned (RabbitMQ sends a ``basic.return`` before the confirm of an unroutable message).
Not thread-safe: one publisher per thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pika
from pika.adapters.select_connection import SelectConnection
from pika.spec import Basic, BasicProperties

from shared.broker.declare import connection_parameters


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
        self._pending: dict[int, int] = {}
        self._outcomes: list[Outcome] = []
        self._index_by_id: dict[str, int] = {}

    # -- connection --------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return bool(self._conn and self._conn.is_open and self._channel and self._channel.is_open)

    def connect(self) -> None:
        self.close()
        self._error = None
        self._conn = SelectConnection(
            self._params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_failure,
            on_close_callback=self._on_failure,
        )
        self._run_until(lambda: self._channel is not None or self._error is not None)
        if self._error or self._channel is None:
            raise PublishError(f"cannot open publisher: {self._error}")

    def _on_connection_open(self, conn: SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        channel.add_on_close_callback(self._on_failure)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._set_channel(channel))

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
        self._pending = {}
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
            self._pending[self._next_tag] = i
            self._index_by_id[msg.message_id] = i
        self._run_until(lambda: not self._pending or self._error is not None)
        if self._pending:
            reason = self._error or "timed out waiting for publisher confirms"
            self.close()
            raise PublishError(reason)
        return self._outcomes

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tag = method.delivery_tag
        tags = [t for t in self._pending if t <= tag] if method.multiple else [tag]
        nack = isinstance(method, Basic.Nack)
        for t in tags:
            index = self._pending.pop(t, None)
            if index is not None and nack:
                self._outcomes[index] = Outcome.NACKED
        if not self._pending and self._conn is not None:
            self._conn.ioloop.stop()

    def _on_return(self, _ch: object, _method: object, props: BasicProperties, _body: bytes) -> None:
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
