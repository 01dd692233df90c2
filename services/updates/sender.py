"""SMTP for the fan-out: the mailer's ``SmtpSender`` (its connection handling, TLS, login and error
classes), plus sending a copy already written as bytes (``wire.py``).

``send_bytes`` is ``smtplib.SMTP.sendmail`` taken apart at one point: after the server accepted
the envelope (MAIL, RCPT) and before DATA it asks ``ready()``, which may wait, and which may say
no (the transaction is then reset and nothing is sent). The fan-out uses it to let its database
mark for a copy travel while the envelope does: the copy's content goes only once the mark is in.

Errors are classified as the mailer classifies them: a 5xx answer is ``PermanentSmtpError`` (that
subscriber's copy failed), 4xx answers and connection failures are ``TemporarySmtpError`` (the
fan-out pauses and tries again later).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable

from services.mailer.smtp import PermanentSmtpError, SmtpSender, TemporarySmtpError
from services.updates.wire import SAFE_ADDRESS

__all__ = ["PermanentSmtpError", "TemporarySmtpError", "UpdateSender"]


class UpdateSender(SmtpSender):
    def send_bytes(
        self,
        data: bytes,
        *,
        sender: str,
        to: list[str],
        ready: Callable[[], bool] | None = None,
        meanwhile: Callable[[], object] | None = None,
    ) -> bool:
        """Hand ``data`` (CRLF line ends) to the server; False if ``ready()`` said no.
        ``meanwhile()`` runs while the server takes in the content, before its answer is read
        (the fan-out writes the next copy then)."""
        if self.limiter is not None:
            self.limiter.acquire()
        for attempt in (1, 2):
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                return _transaction(self._smtp, sender, to, data, ready, meanwhile)
            except smtplib.SMTPServerDisconnected:
                # A kept-open connection the server closed: reopen once before calling it
                # temporary, unless the content went out (the server may have the copy).
                sent = self._data_sent()
                self.close()
                if attempt == 2 or sent:
                    raise TemporarySmtpError(
                        "SMTP server disconnected", maybe_delivered=sent
                    ) from None
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                raise _classify(min(c for c, _ in exc.recipients.values()), "refused") from None
            except smtplib.SMTPResponseException as exc:
                self._reset()
                raise _classify(exc.smtp_code, _text(exc.smtp_error)) from None
            except (OSError, smtplib.SMTPException) as exc:
                sent = self._data_sent()
                self.close()
                raise TemporarySmtpError(
                    f"SMTP connection failed: {type(exc).__name__}", maybe_delivered=sent
                ) from None
        return False  # not reached


def _transaction(
    smtp: smtplib.SMTP,
    sender: str,
    to: list[str],
    data: bytes,
    ready: Callable[[], bool] | None,
    meanwhile: Callable[[], object] | None = None,
) -> bool:
    """What ``sendmail`` does (same options, same exceptions), with ``ready()`` before DATA and
    ``meanwhile()`` between sending the content and reading the answer."""
    smtp.data_sent = False  # type: ignore[attr-defined]  # see SmtpSender._data_sent
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    smtp.putcmd("mail", f"FROM:{_path(sender)}{size}")
    code, resp = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    refused = {}
    for address in to:
        smtp.putcmd("rcpt", f"TO:{_path(address)}")
        code, resp = smtp.getreply()
        if code not in (250, 251):
            refused[address] = (code, resp)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(to):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    if ready is not None and not ready():
        smtp.rset()
        return False
    smtp.putcmd("data")
    code, resp = smtp.getreply()
    if code != 354:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, resp)
    body = _LEADING_DOT.sub(b"..", data)  # as smtplib quotes it
    smtp.data_sent = True  # type: ignore[attr-defined]
    smtp.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    if meanwhile is not None:
        meanwhile()
    code, resp = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, resp)
    return True


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _path(address: str) -> str:
    """``<address>``; smtplib's general quoting (an address parser) only when it is needed."""
    return f"<{address}>" if SAFE_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    if code == 421:
        smtp.close()
    else:
        smtp.rset()


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _classify(code: int, detail: str) -> Exception:
    message = f"{code} {detail}"[:300]
    return PermanentSmtpError(message) if 500 <= code < 600 else TemporarySmtpError(message)
