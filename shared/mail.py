"""Building email messages safely: one-line headers, encoded names, sandbox redirection.

Header values are reduced to a single line before they reach ``EmailMessage`` (which would refuse
a CR or LF anyway), and addresses are always ``Address`` objects (display names quoted or encoded
by the email package), so nothing a supporter types can add a header or a recipient.
"""

from __future__ import annotations

import binascii
import email.policy
import re
from datetime import UTC, datetime
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

INTENDED_HEADER = "X-DearMP-Intended-Recipient"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


class _Registry(HeaderRegistry):
    """The standard header classes, created once per header name instead of once per header
    set (the stdlib builds a new class every time: a tenth of the cost of building a message)."""

    @lru_cache(maxsize=256)  # noqa: B019 - one registry per process, kept for its lifetime
    def __getitem__(self, name: str) -> type:
        return super().__getitem__(name)  # type: ignore[no-any-return]


# The default (RFC 5322, strict) policy, only faster at creating header objects.
POLICY = email.policy.default.clone(header_factory=_Registry())


@lru_cache(maxsize=4096)
def _address_header(field: str, display_name: str, addr_spec: str) -> object:
    """The parsed header, built once per (field, name, address): the service's own From and a
    target's To repeat on every message. Header objects are immutable, so sharing them is safe."""
    return POLICY.header_factory(field, Address(display_name=display_name, addr_spec=addr_spec))


_PLAIN_7BIT = re.compile(r"[\t\r\n\x20-\x7e]*")


@lru_cache(maxsize=1024)
def _header(field: str, value: str) -> object:
    """A parsed header, built once per value: subjects, dates (per second), campaign names and
    MPs' addresses repeat from message to message."""
    return POLICY.header_factory(field, value)


def _set_text(msg: EmailMessage, text: str, subtype: str = "plain") -> None:
    """What ``msg.set_content(text, subtype)`` does, without re-parsing the same Content-Type
    header for every message (a sixth of the mailer's CPU): 7bit when the text is short-lined
    ASCII, else quoted-printable, so the message is 7-bit clean (the stdlib would choose 8bit)."""
    lines = text.encode("utf-8").splitlines()  # bytes: \r\n, \r or \n only, as the stdlib
    body = b"\n".join(lines) + b"\n"
    if _PLAIN_7BIT.fullmatch(text) and all(len(line) <= 78 for line in lines):
        cte, payload = "7bit", body.decode("ascii")
    else:
        cte, payload = "quoted-printable", binascii.b2a_qp(body, istext=True).decode("ascii")
    if subtype == "plain":
        msg["MIME-Version"] = _header("MIME-Version", "1.0")
    msg["Content-Type"] = _header("Content-Type", f'text/{subtype}; charset="utf-8"')
    msg["Content-Transfer-Encoding"] = _header("Content-Transfer-Encoding", cte)
    msg.set_payload(payload)


def one_line(value: str, limit: int = 200) -> str:
    """A single line of text, safe in a header: no control characters, and no literal RFC 2047
    encoded words (which a mail client would decode, CR/LF and all)."""
    text = _CONTROL.sub(" ", value or "").replace("=?", "= ?").replace("?=", "? =")
    return text.strip()[:limit]


def build_message(
    *,
    from_name: str,
    from_addr: str,
    to_name: str,
    to_addr: str,
    subject: str,
    text: str,
    html: str | None = None,
    reply_to: tuple[str, str] | None = None,
    message_id: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    # An Address object, not formataddr(): formataddr leaves specials (a comma, <...>) unquoted
    # beside non-ASCII text, and the From header then parses as two addresses.
    msg["From"] = _address_header("From", one_line(from_name), from_addr)
    msg["To"] = _address_header("To", one_line(to_name), one_line(to_addr))
    if reply_to:
        msg["Reply-To"] = _address_header("Reply-To", one_line(reply_to[0]), one_line(reply_to[1]))
    msg["Subject"] = _header("Subject", one_line(subject, 250))
    msg["Date"] = _header("Date", format_datetime(datetime.now(UTC).replace(microsecond=0)))
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = _header(name, one_line(value, 500))
    _set_text(msg, text)
    if html:
        msg.make_alternative()
        part = EmailMessage(policy=POLICY)
        _set_text(part, html, "html")
        msg.attach(part)
    return msg


def delivery_recipients(
    msg: EmailMessage, intended: str, *, live: bool, sandbox_to: str
) -> list[str]:
    """Where the message really goes. Unless delivery is live, only to the sandbox address, with
    the intended recipient recorded in a header: no real target can receive mail by accident."""
    if live:
        return [intended]
    del msg[INTENDED_HEADER]
    msg[INTENDED_HEADER] = _header(INTENDED_HEADER, one_line(intended))
    return [sandbox_to]
