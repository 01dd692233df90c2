"""Reading a bounce: which of our emails it is about, and what failed, for which address.

The email is named by the address the bounce was sent to, our VERP return path (``services/mailer/verp.py``):
the envelope recipient, or a header the forwarding server left it in (``X-Original-To``,
``Delivered-To``, ``To``). Only that signed address is believed: the returned Message-ID or a
DSN's Original-Envelope-Id can be copied by anyone who saw one of our emails (a supporter's copy
names the letter's), so a bounce naming a letter that way could flag an MP's address.

What happened: an RFC 3464 delivery status notification is read with the email package
(``policy.default``): only the machine-readable ``message/delivery-status`` part of a top-level
``multipart/report``, never its human-readable text or the returned original. Each failed
recipient's ``Action`` and ``Status`` (``5.x.x``: hard, ``4.x.x``: soft) is kept with the
addresses it names (``Final-Recipient``, ``Original-Recipient``); a recipient reported as
delivered (``delivered``, ``relayed``, ``expanded``) is no failure. Anything else that is not an
auto-reply goes to flufl.bounce's detectors (Exim, qmail, Postfix's and Exchange's older formats,
…), which see only the message's own plain text (``screen.py``): a ``heuristic`` failure, which
``record.py`` keeps as a signal only.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import Literal, cast

from flufl.bounce import all_failures

from services.mailer import verp
from services.mailer.bounces.screen import is_auto_reply, own_text
from shared.supporters import normalise_email

HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "To")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"[^\s<>@\"',;:]+@[^\s<>\"',;:]+")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\xa0-\U0010ffff]")  # control characters (NUL: 22021)


@dataclass(frozen=True)
class Bounce:
    kind: Literal["hard", "soft"]
    status: str  # "5.1.1"
    reason: str  # the status and the server's diagnostic, any address in it removed
    how: Literal["dsn", "heuristic"]
    # The addresses the failure is reported for, normalised (``shared.supporters``); compared
    # with the email's recipient by ``record.py``, never stored or logged.
    recipients: frozenset[str] = frozenset()

    def names(self, address: str | None) -> bool:
        return bool(address) and normalise_email(str(address)) in self.recipients


def without_addresses(text: str) -> str:
    """Text fit to keep: no address, no control character, nothing PostgreSQL's UTF-8 refuses."""
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates
    text = " ".join(_UNPRINTABLE.sub(" ", text).split())
    return _ADDRESS.sub("[address removed]", text)[:300]


def letter_named(envelope_recipients: list[str], message: Message, secret: str) -> int | None:
    """The ``letters`` row the bounce's signed return path names (None: none, or forged)."""
    candidates = list(envelope_recipients)
    for name in HEADERS:
        for value in message.get_all(name, []):
            candidates += [addr for _, addr in email.utils.getaddresses([str(value)])]
    for address in candidates:
        letter_id = verp.letter_id_from(address, secret)
        if letter_id is not None:
            return letter_id
    return None


def read_bounce(message: EmailMessage) -> list[Bounce]:
    """Every failure the message reports, one per recipient (empty: it reports no failure, it
    is an auto-reply, or it is not a bounce)."""
    report = delivery_status(message)
    if report is not None:
        return [b for b in map(_from_dsn, report) if b is not None]
    if is_auto_reply(message):
        return []
    temporary, permanent = all_failures(own_text(message))
    if permanent:
        reason = "5.0.0 permanent failure (non-standard bounce)"
        return [Bounce("hard", "5.0.0", reason, "heuristic", _addresses(permanent))]
    if temporary:
        reason = "4.0.0 temporary failure (non-standard bounce)"
        return [Bounce("soft", "4.0.0", reason, "heuristic", _addresses(temporary))]
    return []


def parse(data: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(data, policy=email.policy.default))


def delivery_status(message: Message) -> list[Message] | None:
    """The per-recipient blocks of an RFC 3464 report, or None when it is not one: only a
    ``message/delivery-status`` part directly inside a top-level ``multipart/report`` (one
    inside an attached or quoted message is not read)."""
    if message.get_content_type() != "multipart/report" or not message.is_multipart():
        return None
    for part in message.get_payload():
        if isinstance(part, Message) and part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return [b for b in blocks[1:] if isinstance(b, Message)] or None
    return None


def _from_dsn(block: Message) -> Bounce | None:
    """One recipient's outcome (None: delivered, or no failure)."""
    action = str(block.get("Action", "")).strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    match = _STATUS.search(str(block.get("Status", "")))
    default = "5.0.0" if action == "failed" else "4.0.0"
    status = ".".join(match.groups()) if match else default
    if status.startswith("2"):
        return None
    diagnostic = str(block.get("Diagnostic-Code", "")).partition(";")[2].strip()
    reason = without_addresses(f"{status} {diagnostic}".strip())
    named = frozenset(
        normalise_email(address)
        for field in ("Final-Recipient", "Original-Recipient")
        # "rfc822; jo@example.org" (or "utf-8; …"): the address after the type
        if (address := str(block.get(field, "")).partition(";")[2].strip().strip("<>"))
    )
    return Bounce("hard" if status.startswith("5") else "soft", status, reason, "dsn", named)


def _addresses(found: frozenset[bytes]) -> frozenset[str]:
    return frozenset(normalise_email(a.decode("ascii", errors="replace")) for a in found)
