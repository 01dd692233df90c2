"""Building email messages safely: one-line headers, encoded names, sandbox redirection.

Header values are reduced to a single line before they reach ``EmailMessage`` (which would refuse
a CR or LF anyway), so nothing a supporter types can add a header or a recipient.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

INTENDED_HEADER = "X-DearMP-Intended-Recipient"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


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
    msg = EmailMessage()
    msg["From"] = formataddr((one_line(from_name), from_addr))
    msg["To"] = Address(display_name=one_line(to_name), addr_spec=one_line(to_addr))
    if reply_to:
        msg["Reply-To"] = Address(
            display_name=one_line(reply_to[0]), addr_spec=one_line(reply_to[1])
        )
    msg["Subject"] = one_line(subject, 250)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = one_line(value, 500)
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def delivery_recipients(
    msg: EmailMessage, intended: str, *, live: bool, sandbox_to: str
) -> list[str]:
    """Where the message really goes. Unless delivery is live, only to the sandbox address, with
    the intended recipient recorded in a header: no real target can receive mail by accident."""
    if live:
        return [intended]
    del msg[INTENDED_HEADER]
    msg[INTENDED_HEADER] = one_line(intended)
    return [sandbox_to]
