"""A local SMTP server that catches mail (aiosmtpd), for ``make run`` and the tests.

Every message is kept in memory and, when a directory is given, written there as an ``.eml`` file.
It offers PIPELINING, as real mail servers do (``pipelining=False`` does not).
For fault tests it can answer slowly (``delay``; ``stall_*`` for the final dot of a few messages),
refuse recipients or MAIL FROM with a given code, take a message and drop the connection before
answering (``drop_after_taking``), and be
stopped (dropping every open connection, as a crashed server would) and started again on the same
port, keeping what it caught. Run it alone with ``python -m shared.mailcatcher --port 1025 --dir var/mail``.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import signal
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Caught:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class CatchingHandler:
    def __init__(self, directory: Path | None = None, delay: float = 0.0, pipelining: bool = True):
        self.directory = directory
        self.delay = delay
        self.pipelining = pipelining
        self.refuse_code: int | None = None  # e.g. 550 or 451: refuse every recipient
        # Refuse for good (550 at the end of DATA) each message meant for one of these addresses:
        # its recipient, or in sandbox mode its X-DearMP-Intended-Recipient.
        self.refuse_meant_for: set[str] = set()
        # Answer MAIL FROM with this code (e.g. 530: "authentication required"), for every message.
        self.refuse_mail_from: int | None = None
        # Refuse these recipients at RCPT (550 5.1.1), the others are taken.
        self.refuse_recipients: set[str] = set()
        # Called (in a worker thread, so it may block) with each message once it is stored and
        # before the server answers: a test does something "while the server takes it".
        self.on_message: Callable[[Caught], object] | None = None
        # Take ``stall_seconds`` to answer the final dot of the next ``stall_messages`` messages,
        # as busy, greylisting or tarpitting servers do: storing the message first and answering
        # later (``stall_stores_first``, as Postfix queues it), or answering and storing it only
        # then, so a client that hangs up before the answer loses it (aiosmtpd's way).
        self.stall_seconds = 0.0
        self.stall_messages = 0
        self.stall_stores_first = False
        # Stalls the client waited out, and stalls it gave up on (it hung up before the answer).
        self.stalls_waited = 0
        self.stalls_abandoned = 0
        # Take the next N messages, then drop the connection before answering: the client cannot
        # know the server has them (a crash or network loss at the worst moment).
        self.drop_after_taking = 0
        self.messages: list[Caught] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        if directory:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_EHLO(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Offer PIPELINING as real mail servers do (aiosmtpd reads pipelined commands in order
        but does not say so); ``pipelining=False`` serves clients the one-at-a-time way."""
        session.host_name = hostname
        if not self.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.refuse_mail_from:
            return f"{self.refuse_mail_from} 5.7.0 Authentication required (test)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,  # noqa: N802
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.refuse_code:
            return f"{self.refuse_code} Recipient refused (test)"
        if address.lower() in {a.lower() for a in self.refuse_recipients}:
            return "550 5.1.1 Mailbox unavailable (test)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        stall = 0.0
        if self.stall_messages > 0:
            self.stall_messages -= 1
            stall = self.stall_seconds
        if stall and not self.stall_stores_first:
            await asyncio.sleep(stall)
            if server.transport is None or server.transport.is_closing():
                self.stalls_abandoned += 1
                return "451 4.4.2 Client went away (test)"  # nobody hears it; nothing kept
            self.stalls_waited += 1
            stall = 0.0
        content = envelope.content or b""
        data = content.encode() if isinstance(content, str) else bytes(content)
        caught = Caught(str(envelope.mail_from), list(envelope.rcpt_tos), data)
        meant_for = {a.lower() for a in envelope.rcpt_tos}
        meant_for.add(str(caught.message.get("X-DearMP-Intended-Recipient", "")).lower())
        if meant_for & {a.lower() for a in self.refuse_meant_for}:
            return "550 5.1.1 Mailbox unavailable (test)"
        with self._arrived:
            self.messages.append(caught)
            index = len(self.messages)
            self._arrived.notify_all()
        if self.directory:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            (self.directory / f"{stamp}-{index:06d}.eml").write_bytes(caught.data)
        if self.on_message is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.on_message, caught)
        if self.drop_after_taking and server.transport is not None:
            self.drop_after_taking -= 1
            server.transport.close()
        if stall:  # stored: the client may give up waiting, but the message is kept
            await asyncio.sleep(stall)
            if server.transport is None or server.transport.is_closing():
                self.stalls_abandoned += 1
            else:
                self.stalls_waited += 1
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Caught]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            return list(self.messages)


class _TrackingController(Controller):
    """A controller that knows its open connections, so stopping can drop them."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        smtp = super().factory()
        self.sessions.add(smtp)
        return smtp

    def drop_connections(self) -> None:
        for smtp in list(self.sessions):
            if smtp.transport is not None:
                smtp.transport.close()


class MailCatcher:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        directory: Path | None = None,
        delay: float = 0.0,
        pipelining: bool = True,
    ):
        self.handler = CatchingHandler(directory, delay, pipelining)
        if port == 0:
            import socket

            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self.controller: _TrackingController | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Caught]:
        return self.handler.messages

    @property
    def running(self) -> bool:
        return self.controller is not None

    def start(self) -> MailCatcher:
        """Listen (again) on the same port; messages caught before are kept."""
        if self.controller is None:
            controller = _TrackingController(
                self.handler, hostname=self.host, port=self.port, data_size_limit=10 * 1024 * 1024
            )
            controller.start()
            self.controller = controller
        return self

    def stop(self) -> None:
        """Close every open connection and stop listening (a no-op when stopped)."""
        controller, self.controller = self.controller, None
        if controller is None:
            return
        controller.loop.call_soon_threadsafe(controller.drop_connections)
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Catch mail locally and store it as .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"))
    args = parser.parse_args()
    catcher = MailCatcher(args.host, args.port, args.dir).start()
    print(
        f"mail catcher on smtp://{args.host}:{args.port}, storing messages in {args.dir}/",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    catcher.stop()


if __name__ == "__main__":
    main()
