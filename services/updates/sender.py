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

import smtplib
from collections.abc import Callable

from services.updates.wire import SAFE_ADDRESS
from shared.smtp import (
    PermanentSmtpError,
    SmtpSender,
    SmtpTimeouts,
    TemporarySmtpError,
    abandon,
    data_block,
)

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
        if self.dkim is not None:
            data = self.dkim.sign(data)
        return self.transact(lambda smtp: _transaction(smtp, sender, to, data, ready, meanwhile))


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
    smtp.data_sent = False  # type: ignore[attr-defined]  # see SmtpSender.transact
    steps: SmtpTimeouts = smtp.timeouts  # type: ignore[attr-defined]  # RFC 5321's, or set
    expect: Callable[[float], None] = smtp.expect  # type: ignore[attr-defined]
    expect(steps.command)
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    smtp.putcmd("mail", f"FROM:{_path(sender)}{size}")
    code, resp = smtp.getreply()
    if code != 250:
        abandon(smtp, code)
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
    expect(steps.data)
    code, resp = smtp.getreply()
    if code != 354:
        abandon(smtp, code)
        raise smtplib.SMTPDataError(code, resp)
    block = data_block(data)
    smtp.data_sent = True  # type: ignore[attr-defined]
    expect(steps.block)
    smtp.send(block)
    if meanwhile is not None:
        meanwhile()
    expect(steps.dot)
    code, resp = smtp.getreply()
    expect(steps.command)
    if code != 250:
        abandon(smtp, code)
        raise smtplib.SMTPDataError(code, resp)
    return True


def _path(address: str) -> str:
    """``<address>``; smtplib's general quoting (an address parser) only when it is needed."""
    return f"<{address}>" if SAFE_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)
