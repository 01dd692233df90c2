"""Sending over SMTP, with the connection kept open between messages and reopened on failure.

Errors are classified once, here: a 5xx answer is ``PermanentSmtpError``; 4xx answers and
connection failures are ``TemporarySmtpError`` (the event is retried with growing delays).
One sender per thread (smtplib connections are not shared); the rate limit (``throttle.py``) is
shared by every sender in the process.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from services.mailer.throttle import TokenBucket
from shared.mail import smtp_bytes


class TemporarySmtpError(Exception):
    """Try again later. ``maybe_delivered``: the connection failed while the message was being
    handed over, so the server may have accepted it; otherwise (a 4xx answer, no connection) it
    certainly did not."""

    def __init__(self, message: str, *, maybe_delivered: bool = False):
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class PermanentSmtpError(Exception):
    pass


# An envelope address smtplib would send as "<address>" after parsing it again.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


class _PlainEnvelope:
    """smtplib parses every envelope address again (``email.utils.parseaddr``, a tenth of the
    mailer's CPU) only to write it as ``<address>``. The mailer's come from parsed headers and
    checked settings: a plain one is written directly, byte for byte what smtplib would write;
    anything else (and SMTPUTF8) goes to smtplib's own ``mail``/``rcpt``."""

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if not _PLAIN_ADDRESS.fullmatch(sender) or any(o.lower() == "smtputf8" for o in options):
            return super().mail(sender, options)  # type: ignore[misc,no-any-return]
        return self._command("mail", f"FROM:<{sender}>", options)

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if not _PLAIN_ADDRESS.fullmatch(recip):
            return super().rcpt(recip, options)  # type: ignore[misc,no-any-return]
        return self._command("rcpt", f"TO:<{recip}>", options)

    def _command(self, verb: str, arg: str, options: Sequence[str]) -> tuple[int, bytes]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        if options and smtp.does_esmtp:
            arg += " " + " ".join(options)
        smtp.putcmd(verb, arg)
        return smtp.getreply()


class _SMTP(_PlainEnvelope, smtplib.SMTP):
    pass


class _SMTP_SSL(_PlainEnvelope, smtplib.SMTP_SSL):  # noqa: N801 - smtplib's own name
    pass


class SmtpSender:
    def __init__(self, url: str, *, timeout: float = 30.0, limiter: TokenBucket | None = None):
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
        self.timeout = timeout
        self.limiter = limiter
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = _SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = _SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                smtp.starttls(context=context)
        if self.username:
            smtp.login(self.username, self.password or "")
        return smtp

    def send(self, message: EmailMessage, *, to: list[str]) -> None:
        if self.limiter is not None:
            self.limiter.acquire()
        for attempt in (1, 2):
            handing_over = False
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                handing_over = True
                sender, data = envelope_sender(message), smtp_bytes(message)
                if sender is not None and data is not None:
                    self._smtp.sendmail(sender, to, data)  # the bytes send_message would write
                else:
                    self._smtp.send_message(message, sender, to_addrs=to)
                return
            except smtplib.SMTPServerDisconnected:
                # A reused connection the server closed: reopen once before calling it temporary.
                self.close()
                if attempt == 2:
                    raise TemporarySmtpError(
                        "SMTP server disconnected", maybe_delivered=handing_over
                    ) from None
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                codes = [code for code, _ in exc.recipients.values()]
                raise _classify(min(codes), "recipient refused") from None
            except (
                smtplib.SMTPSenderRefused,
                smtplib.SMTPDataError,
                smtplib.SMTPResponseException,
            ) as exc:
                self._reset()
                raise _classify(exc.smtp_code, _text(exc.smtp_error)) from None
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise TemporarySmtpError(
                    f"SMTP connection failed: {type(exc).__name__}", maybe_delivered=handing_over
                ) from None

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


def envelope_sender(message: EmailMessage) -> str | None:
    """The From header's address, read from the parsed header (smtplib would parse it again)."""
    addresses: tuple[Any, ...] = getattr(message["From"], "addresses", ())
    return str(addresses[0].addr_spec) if len(addresses) == 1 else None


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _classify(code: int, detail: str) -> Exception:
    message = f"{code} {detail}"[:300]
    return PermanentSmtpError(message) if 500 <= code < 600 else TemporarySmtpError(message)
