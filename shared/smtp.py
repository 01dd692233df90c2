"""Sending over SMTP, with the connection kept open between messages and reopened on failure.

Errors are classified once, here: a 5xx answer is ``PermanentSmtpError``; 4xx answers and
connection failures are ``TemporarySmtpError`` (the event is retried with growing delays).
One sender per thread (smtplib connections are not shared); the rate limit (``throttle.py``) is
shared by every sender in the process.
"""

from __future__ import annotations

import email.policy
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

from shared.logging import get_logger
from shared.mail import smtp_bytes
from shared.metrics import SMTP_PAUSED
from shared.throttle import TokenBucket

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, SizedBuffer


T = TypeVar("T")
log = get_logger(__name__)


@dataclass(frozen=True)
class SmtpTimeouts:
    """How long to wait at each step of a mail transaction, in seconds: RFC 5321 §4.5.3.2's
    minimums by default. A client that gives up sooner and tries again duplicates mail (RFC
    1047): a busy, greylisting or tarpitting server that takes its time is waited for.
    ``DEARMP_SMTP_TIMEOUTS`` sets any of them (``dot=600,block=180``)."""

    greeting: float = 300.0  # the server's 220 greeting (and connecting)
    command: float = 300.0  # the answer to MAIL, RCPT and the session's commands (EHLO, …)
    data: float = 120.0  # the answer to DATA (354)
    block: float = 180.0  # sending each block of the message
    dot: float = 600.0  # the answer to the final dot: the server is taking the message

    @classmethod
    def parse(cls, text: str) -> SmtpTimeouts:
        """``name=seconds`` pairs, comma-separated; names not given keep the RFC's values."""
        names = tuple(cls.__dataclass_fields__)
        values: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, _, seconds = (s.strip() for s in part.partition("="))
            if name not in names:
                raise ValueError(f"unknown SMTP step {name!r}: use {', '.join(names)}")
            try:
                values[name] = float(seconds)
            except ValueError:
                raise ValueError(f"{part!r}: seconds must be a number") from None
            if values[name] <= 0:
                raise ValueError(f"{part!r}: seconds must be more than 0")
        return cls(**values)


class TemporarySmtpError(Exception):
    """Try again later. ``maybe_delivered``: the connection failed while the message was being
    handed over, so the server may have accepted it; otherwise (a 4xx answer, no connection) it
    certainly did not."""

    def __init__(self, message: str, *, maybe_delivered: bool = False):
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class PermanentSmtpError(Exception):
    pass


class SetupRefused(TemporarySmtpError):
    """The server refuses our set-up, not this message: 530 (authentication required), a 5xx to
    MAIL FROM (our sender address), a refused login or STARTTLS, a TLS failure. Every message
    would be refused the same way, so none is failed for it: sending pauses, the operator is
    told, and the messages wait to be retried."""


# An envelope address smtplib would send as "<address>" after parsing it again.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


class _PlainEnvelope:
    """smtplib parses every envelope address again (``email.utils.parseaddr``, a tenth of the
    mailer's CPU) only to write it as ``<address>``. The mailer's come from parsed headers and
    checked settings: a plain one is written directly, byte for byte what smtplib would write;
    anything else (and SMTPUTF8) goes to smtplib's own ``mail``/``rcpt``."""

    timeouts = SmtpTimeouts()

    def expect(self, seconds: float) -> None:
        """Wait up to ``seconds`` for what comes next (the socket's timeout, step by step)."""
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.settimeout(seconds)

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        self.expect(self.timeouts.command)
        if not _PLAIN_ADDRESS.fullmatch(sender) or any(o.lower() == "smtputf8" for o in options):
            return super().mail(sender, options)  # type: ignore[misc,no-any-return]
        return self._command("mail", f"FROM:<{sender}>", options)

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        self.expect(self.timeouts.command)
        if not _PLAIN_ADDRESS.fullmatch(recip):
            return super().rcpt(recip, options)  # type: ignore[misc,no-any-return]
        return self._command("rcpt", f"TO:<{recip}>", options)

    def _command(self, verb: str, arg: str, options: Sequence[str]) -> tuple[int, bytes]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        if options and smtp.does_esmtp:
            arg += " " + " ".join(options)
        smtp.putcmd(verb, arg)
        return smtp.getreply()


class _Pipelining(_PlainEnvelope):
    """``sendmail`` with SMTP PIPELINING (RFC 2920) when the server offers it, as Postfix, Exim,
    Exchange and the big providers do: MAIL, RCPT and DATA go out together and their answers are
    read together, so a message costs two round trips instead of four. The bytes written are
    smtplib's own, and every answer is handled as smtplib's ``sendmail`` handles it (the same
    exceptions, connection closed on 421, RSET otherwise). Anything unusual (a server without
    PIPELINING, SMTPUTF8, an address that is not plain) goes to smtplib's ``sendmail``, as does
    everything when ``use_pipelining`` is off (``?pipelining=false`` in DEARMP_SMTP_URL)."""

    use_pipelining = True
    # Whether the current transaction's message went (or began to go) to the server: only then
    # can the server have accepted it. Set before the DATA command when smtplib sends.
    data_sent = False

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: SizedBuffer | str,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        self.data_sent = False
        smtp.ehlo_or_helo_if_needed()
        if (
            not isinstance(msg, bytes)
            or isinstance(to_addrs, str)
            or not to_addrs
            or not (self.use_pipelining and smtp.does_esmtp and smtp.has_extn("pipelining"))
            or any(o.lower() == "smtputf8" for o in (*mail_options, *rcpt_options))
            or not all(_PLAIN_ADDRESS.fullmatch(a) for a in (from_addr, *to_addrs))
        ):
            return super().sendmail(  # type: ignore[misc,no-any-return]
                from_addr, to_addrs, msg, mail_options, rcpt_options
            )
        mail_opts = [f"size={len(msg)}"] if smtp.has_extn("size") else []
        mail_opts += mail_options
        commands = [_line("mail", f"FROM:<{from_addr}>", mail_opts)]
        commands += [_line("rcpt", f"TO:<{to}>", rcpt_options) for to in to_addrs]
        commands.append("data\r\n")
        self.expect(self.timeouts.command)
        smtp.send("".join(commands))
        mail_code, mail_reply = smtp.getreply()
        answers = [smtp.getreply() for _ in to_addrs]
        self.expect(self.timeouts.data)
        data_code, data_reply = smtp.getreply()
        refused = {
            to: answer
            for to, answer in zip(to_addrs, answers, strict=True)
            if answer[0] not in (250, 251)
        }
        if data_code == 354 and (mail_code != 250 or len(refused) == len(to_addrs)):
            smtp.send(b".\r\n")  # the server opened DATA with nobody to deliver to: close it
            data_code, data_reply = smtp.getreply()
        if mail_code != 250:
            abandon(smtp, mail_code)
            raise smtplib.SMTPSenderRefused(mail_code, mail_reply, from_addr)
        if any(code == 421 for code, _ in refused.values()):
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
        if len(refused) == len(to_addrs):
            abandon(smtp, 0)
            raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
        if data_code != 354:
            raise smtplib.SMTPDataError(data_code, data_reply)  # smtplib leaves the reset to us
        block = data_block(msg)
        self.data_sent = True
        self.expect(self.timeouts.block)
        smtp.send(block)
        self.expect(self.timeouts.dot)
        code, reply = smtp.getreply()
        self.expect(self.timeouts.command)
        if code != 250:
            abandon(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
        return refused

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_sent = True  # smtplib's path: from the DATA command on, it may be taken
        # smtplib's DATA is one call (the 354, the block, the final answer): wait the longest.
        self.expect(max(self.timeouts.data, self.timeouts.block, self.timeouts.dot))
        try:
            return super().data(msg)  # type: ignore[misc,no-any-return]
        finally:
            self.expect(self.timeouts.command)


def abandon(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal, as smtplib: the server is closing (421), or reset the transaction."""
    if code == 421:
        smtp.close()
    else:
        smtp._rset()  # type: ignore[attr-defined]


_LINE_START_DOT = re.compile(rb"(?m)^\.")


def data_block(data: bytes) -> bytes:
    """The message as it goes after DATA: lines starting with a dot doubled, CRLF-terminated,
    then the final dot (what smtplib's ``data`` writes)."""
    body = _LINE_START_DOT.sub(b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _line(verb: str, arg: str, options: Sequence[str]) -> str:
    """A command as smtplib's ``putcmd`` writes it (ESMTP: the options after the argument)."""
    if options:
        arg += " " + " ".join(options)
    return f"{verb} {arg}\r\n"


class _SMTP(_Pipelining, smtplib.SMTP):
    pass


class _SMTP_SSL(_Pipelining, smtplib.SMTP_SSL):  # noqa: N801 - smtplib's own name
    pass


class MessageSigner(Protocol):
    """Signs a whole message (``shared.dkim.DkimSigner``): the bytes with its header first."""

    def sign(self, data: bytes) -> bytes: ...


class SmtpSender:
    def __init__(
        self,
        url: str,
        *,
        timeouts: SmtpTimeouts | None = None,
        limiter: TokenBucket | None = None,
        pause: SendingPause | None = None,
        dkim: MessageSigner | None = None,
    ):
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            raise ValueError("DEARMP_SMTP_URL must start with smtp:// or smtps://")
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        self.host = parsed.hostname or "127.0.0.1"
        self.implicit_tls = parsed.scheme == "smtps"
        self.port = parsed.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.starttls = options.get("starttls", "false").lower() in ("1", "true", "yes")
        self.pipelining = options.get("pipelining", "true").lower() in ("1", "true", "yes")
        self.timeouts = timeouts or SmtpTimeouts()
        self.limiter = limiter
        self.pause = pause
        self.dkim = dkim  # signs every message when set (shared.dkim)
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        """A new session: connected, TLS when asked for, logged in. A server that refuses the
        session (no greeting, STARTTLS or login refused) refuses it to every message: that is
        configuration, not the letter, so it is temporary (retried, then dead-lettered for an
        operator to replay), never a permanent failure recorded on the letter."""
        context = ssl.create_default_context()
        smtp: _SMTP | _SMTP_SSL | None = None
        try:
            greeting = self.timeouts.greeting
            if self.implicit_tls:
                smtp = _SMTP_SSL(self.host, self.port, timeout=greeting, context=context)
            else:
                smtp = _SMTP(self.host, self.port, timeout=greeting)
            smtp.timeouts = self.timeouts
            smtp.expect(self.timeouts.command)
            if not self.implicit_tls and self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.use_pipelining = self.pipelining
            return smtp
        except (smtplib.SMTPResponseException, smtplib.SMTPNotSupportedError) as exc:
            if smtp is not None:
                smtp.close()
            detail = (
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
                if isinstance(exc, smtplib.SMTPResponseException)
                else str(exc)
            )
            raise SetupRefused(f"SMTP server refused the session: {detail}"[:300]) from None
        except ssl.SSLError as exc:  # a certificate we cannot trust, or no TLS where it is asked
            if smtp is not None:
                smtp.close()
            raise SetupRefused(f"TLS with the SMTP server failed: {exc}"[:300]) from None
        except BaseException:
            if smtp is not None:
                smtp.close()
            raise

    def send(self, message: EmailMessage, *, to: list[str], return_path: str | None = None) -> None:
        """``return_path``: the envelope sender (MAIL FROM), where bounces go (the mailer's
        VERP address); by default the From header's address."""

        def transaction(smtp: smtplib.SMTP) -> None:
            sender, data = envelope_sender(message), smtp_bytes(message)
            if self.dkim is not None and sender is not None:
                # Signed over the exact bytes that go: the generator's, CRLF line ends.
                data = self.dkim.sign(data or message.as_bytes(policy=_WIRE))
            sender = return_path or sender  # send_message too takes it as the envelope's
            if sender is not None and data is not None:
                smtp.sendmail(sender, to, data)  # the bytes send_message would write
            else:
                smtp.send_message(message, sender, to_addrs=to)

        self.transact(transaction)

    def transact(self, transaction: Callable[[smtplib.SMTP], T]) -> T:
        """Run one mail transaction on the kept connection (opened when needed), under the rate
        limit, with smtplib's errors turned into ours: 5xx permanent, 4xx and connection
        failures temporary. A reused connection the server had closed is reopened once, unless
        the message went out (then the server may have it: ``maybe_delivered``, and the resend
        is left to a retry that counts it). ``transaction`` keeps ``data_sent`` on the
        connection up to date (``_Pipelining`` does for ``sendmail``)."""
        if self.pause is not None:
            self.pause.check()
        if self.limiter is not None:
            self.limiter.acquire()
        try:
            result = self._transact(transaction)
        except SetupRefused as exc:
            if self.pause is not None:
                self.pause.refused(str(exc))
            raise
        if self.pause is not None:
            self.pause.cleared()
        return result

    def _transact(self, transaction: Callable[[smtplib.SMTP], T]) -> T:
        for attempt in (1, 2):
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                return transaction(self._smtp)
            except smtplib.SMTPServerDisconnected:
                sent = self._data_sent()
                self.close()
                if attempt == 2 or sent:
                    raise TemporarySmtpError(
                        "SMTP server disconnected", maybe_delivered=sent
                    ) from None
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                codes = [code for code, _ in exc.recipients.values()]
                raise _classify(min(codes), "recipient refused") from None
            except smtplib.SMTPSenderRefused as exc:
                self._reset()  # our sender address, refused: every message would be
                detail = f"{exc.smtp_code} {_text(exc.smtp_error)} (to MAIL FROM)"
                if exc.smtp_code >= 500:
                    raise SetupRefused(detail[:300]) from None
                raise TemporarySmtpError(detail[:300]) from None
            except smtplib.SMTPResponseException as exc:
                self._reset()
                raise _classify(exc.smtp_code, _text(exc.smtp_error)) from None
            except (OSError, smtplib.SMTPException) as exc:
                sent = self._data_sent()
                self.close()
                raise TemporarySmtpError(
                    f"SMTP connection failed: {type(exc).__name__}", maybe_delivered=sent
                ) from None
        raise AssertionError("not reached")

    def _data_sent(self) -> bool:
        return bool(getattr(self._smtp, "data_sent", True)) if self._smtp is not None else False

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None


_WIRE = email.policy.SMTP  # as on the wire: CRLF line ends


def envelope_sender(message: EmailMessage) -> str | None:
    """The From header's address, read from the parsed header (smtplib would parse it again)."""
    addresses: tuple[Any, ...] = getattr(message["From"], "addresses", ())
    return str(addresses[0].addr_spec) if len(addresses) == 1 else None


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


# Answers about our set-up wherever they come: authentication required (RFC 4954), and
# "must issue a STARTTLS command first" (RFC 3207).
SETUP_CODES = frozenset((530,))


def _classify(code: int, detail: str) -> Exception:
    """A refusal of the recipient or the message: 5xx permanent, 4xx temporary; a refusal of our
    set-up is neither the letter's fault nor permanent (``SetupRefused``)."""
    message = f"{code} {detail}"[:300]
    if code in SETUP_CODES:
        return SetupRefused(message)
    return PermanentSmtpError(message) if 500 <= code < 600 else TemporarySmtpError(message)


class SendingPause:
    """One per process, shared by its senders: after the server refuses our set-up, nobody tries
    it again until the pause ends (``first`` seconds, doubling to ``longest``); a send that then
    goes through ends the pause. ``on_change(reason | None)`` tells the operator (the mailer
    records it for ``dearmp status``, logs it and sets a metric); it is called only when the
    state changes, outside the lock."""

    def __init__(
        self,
        first: float = 30.0,
        longest: float = 900.0,
        on_change: Callable[[str | None, float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first, self.longest = first, longest
        self.on_change = on_change
        self.clock = clock
        self._lock = threading.Lock()
        self._until = 0.0
        self._length = 0.0
        self.reason: str | None = None

    def check(self) -> None:
        """Raise ``SetupRefused`` while paused (nothing is sent, nothing is tried)."""
        with self._lock:
            left = self._until - self.clock()
            reason = self.reason
        if reason is not None and left > 0:
            raise SetupRefused(f"sending paused for {left:.0f}s more: {reason}"[:300])

    def refused(self, reason: str) -> None:
        with self._lock:
            self._length = min(self.longest, self._length * 2 if self._length else self.first)
            self._until = self.clock() + self._length
            self.reason = reason
            length = self._length
        log.warning(
            "the mail server refuses our set-up: sending paused", reason=reason, seconds=length
        )
        SMTP_PAUSED.set(1)
        if self.on_change is not None:
            self.on_change(reason, length)

    def cleared(self) -> None:
        with self._lock:
            if self.reason is None:
                return
            self.reason, self._until, self._length = None, 0.0, 0.0
        log.info("the mail server takes our mail again: sending resumed")
        SMTP_PAUSED.set(0)
        if self.on_change is not None:
            self.on_change(None, 0.0)
