"""A recording SMTP sink for whole-system runs: every envelope it takes goes into a ledger.

``RecordingSink`` is ``shared.mailcatcher.MailCatcher`` (aiosmtpd, in this process) with a handler
that keeps, per message, only what identifies it: MAIL FROM, RCPT TO, the Message-ID and the
``X-DearMP-*`` headers, and for a confirmation email its link. The bodies are not kept, so a run
of tens of thousands of messages costs a few megabytes.

The mailer's Message-ID says what an email is and for whom: ``<purpose.SIGNATURE@domain>``
(purpose: confirmation, reminder, letter, copy, unresolvable, held, repeat) and the updates
service's ``<update.CAMPAIGN.NUMBER.SIGNATURE@domain>``. In sandbox mode (the default) every
message goes to ``DEARMP_SANDBOX_TO`` and the intended recipient is in
``X-DearMP-Intended-Recipient``; ``X-DearMP-Campaign`` names the campaign.

Faults: ``stop()``/``start()`` (inherited: open connections are dropped, the port is kept) and
``answer_after(seconds)``: each message that arrives meanwhile is answered that much later. A
message is recorded only when the server answers 250 to a client that is still there to hear
it (aiosmtpd's way: a client that hung up before the answer has not handed the message over).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from shared.mailcatcher import CatchingHandler, MailCatcher

CONFIRM_RE = re.compile(r"(https?://\S+/confirm/[A-Za-z0-9_\-.]+)")
_HEADERS = BytesHeaderParser(policy=email.policy.compat32)


@dataclass(frozen=True)
class Envelope:
    """One message the sink took (answered 250)."""

    at: float  # time.time() when it was answered
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str
    purpose: str  # confirmation, letter, copy, update, repeat, ... ("?" if not ours)
    signature_id: str | None
    campaign: str | None
    intended: str | None  # X-DearMP-Intended-Recipient (sandbox mode)
    update: int | None  # the update's number, for update emails
    confirm_url: str | None  # the link in a confirmation email
    waited: float  # seconds the sink took to answer

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def identify(message_id: str) -> tuple[str, str | None, str | None, int | None]:
    """(purpose, signature id, campaign, update number) from one of our Message-IDs."""
    local = message_id.strip().strip("<>").split("@", 1)[0]
    if local.startswith("update."):
        parts = local.split(".")
        if len(parts) == 4 and parts[2].isdigit():
            return "update", parts[3], parts[1], int(parts[2])
        return "update", None, None, None
    purpose, _, rest = local.partition(".")
    return (purpose or "?"), (rest or None), None, None


def parse(mail_from: str, rcpt_tos: list[str], data: bytes, at: float, waited: float) -> Envelope:
    headers = _HEADERS.parsebytes(data)
    message_id = str(headers.get("Message-ID", "")).strip()
    purpose, signature_id, campaign, update = identify(message_id)
    confirm_url = None
    if purpose in ("confirmation", "reminder"):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(("plain",))  # type: ignore[attr-defined]
        found = CONFIRM_RE.search(body.get_content() if body is not None else "")
        confirm_url = found.group(1) if found else None
    return Envelope(
        at=at,
        mail_from=mail_from,
        rcpt_tos=tuple(rcpt_tos),
        message_id=message_id,
        purpose=purpose,
        signature_id=signature_id,
        campaign=str(headers.get("X-DearMP-Campaign") or campaign or "") or None,
        intended=str(headers.get("X-DearMP-Intended-Recipient") or "") or None,
        update=update,
        confirm_url=confirm_url,
        waited=waited,
    )


class LedgerHandler(CatchingHandler):
    """Records each envelope it answers 250 to; answers after ``delay`` seconds when set."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []
        self.listeners: list[Callable[[Envelope], None]] = []
        self.answering: Counter[str] = Counter()  # MAIL FROM of messages waiting for an answer
        self.answering_ports: Counter[int] = Counter()  # the clients' ports, likewise
        self.abandoned = 0  # clients that hung up before the answer (nothing recorded)
        self._ledger_lock = threading.Lock()

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: SmtpEnvelope
    ) -> str:
        started = time.monotonic()
        sender = str(envelope.mail_from)
        delay = self.delay
        if delay:
            port = int(session.peer[1]) if isinstance(session.peer, tuple) else 0
            self.answering[sender] += 1
            self.answering_ports[port] += 1
            try:
                await asyncio.sleep(delay)
            finally:
                self.answering[sender] -= 1
                self.answering_ports[port] -= 1
            if server.transport is None or server.transport.is_closing():
                self.abandoned += 1
                return "451 4.4.2 Client went away (soak sink)"  # nobody hears it; not kept
        content = envelope.content or b""
        data = content.encode() if isinstance(content, str) else bytes(content)
        found = parse(
            sender, list(envelope.rcpt_tos), data, time.time(), time.monotonic() - started
        )
        with self._ledger_lock:
            self.envelopes.append(found)
        for listener in self.listeners:
            listener(found)
        return "250 Message accepted"

    def snapshot(self) -> list[Envelope]:
        with self._ledger_lock:
            return list(self.envelopes)

    def recent(self, seconds: float) -> int:
        """How many messages were taken in the last ``seconds``."""
        since = time.time() - seconds
        with self._ledger_lock:
            n = 0
            for env in reversed(self.envelopes):
                if env.at < since:
                    break
                n += 1
            return n

    def waiting_on(self, ports: set[int]) -> int:
        """Messages from clients on these local ports that wait for the sink's answer."""
        return sum(n for port, n in list(self.answering_ports.items()) if port in ports)

    def waiting_from(self, prefix: str) -> int:
        """Messages from a MAIL FROM starting with ``prefix`` that wait for the sink's answer."""
        return sum(n for sender, n in list(self.answering.items()) if sender.startswith(prefix))


class RecordingSink(MailCatcher):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.ledger = LedgerHandler()
        self.handler = self.ledger

    def answer_after(self, seconds: float) -> None:
        """Answer each message that arrives from now on ``seconds`` later (0: at once)."""
        self.ledger.delay = seconds

    def on_envelope(self, listener: Callable[[Envelope], None]) -> None:
        """Call ``listener`` (on the sink's event loop: keep it quick) for each new envelope."""
        self.ledger.listeners.append(listener)
