"""Reading a bounce: which of our emails it is about, and whether it is hard or soft.

The email is named by the address the bounce was sent to, our VERP return path (``services/mailer/verp.py``):
the envelope recipient, or a header the forwarding server left it in (``X-Original-To``,
``Delivered-To``, ``To``). Only that signed address is believed: the returned Message-ID or a
DSN's Original-Envelope-Id can be copied by anyone who saw one of our emails (a supporter's copy
names the letter's), so a bounce naming a letter that way could flag an MP's address.

What happened: an RFC 3464 delivery status notification (``multipart/report;
report-type=delivery-status``) is read with the email package, its ``Action`` and ``Status``
(``5.x.x``: hard, ``4.x.x``: soft); anything else goes to flufl.bounce's detectors (Exim, qmail,
Postfix's and Exchange's older formats, …), whose permanent failures are hard and temporary ones
soft. A DSN that reports delivery (``delivered``, ``relayed``, ``expanded``) is no bounce.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from flufl.bounce import all_failures

from services.mailer import verp

HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "To")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"[^\s<>@\"',;:]+@[^\s<>\"',;:]+")


@dataclass(frozen=True)
class Bounce:
    kind: Literal["hard", "soft"]
    status: str  # "5.1.1"
    reason: str  # the status and the server's diagnostic, any address in it removed
    how: Literal["dsn", "heuristic"]


def without_addresses(text: str) -> str:
    return _ADDRESS.sub("[address removed]", " ".join(text.split()))[:300]


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


def read_bounce(message: Message) -> Bounce | None:
    """What the bounce says happened (None: it reports no failure, or it is not a bounce)."""
    report = _delivery_status(message)
    if report is not None:
        return _from_dsn(report)
    temporary, permanent = all_failures(message)
    if permanent:
        return Bounce("hard", "5.0.0", "5.0.0 permanent failure (non-standard bounce)", "heuristic")
    if temporary:
        return Bounce("soft", "4.0.0", "4.0.0 temporary failure (non-standard bounce)", "heuristic")
    return None


def parse(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def _delivery_status(message: Message) -> list[Message] | None:
    """The per-recipient blocks of an RFC 3464 report, or None when it is not one."""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return [b for b in blocks[1:] if isinstance(b, Message)] or None
    return None


def _from_dsn(recipients: list[Message]) -> Bounce | None:
    """The most serious of the recipients' outcomes (our emails have one recipient each)."""
    found: list[Bounce] = []
    for block in recipients:
        action = str(block.get("Action", "")).strip().lower()
        if action in ("delivered", "relayed", "expanded"):
            continue
        match = _STATUS.search(str(block.get("Status", "")))
        default = "5.0.0" if action == "failed" else "4.0.0"
        status = ".".join(match.groups()) if match else default
        if status.startswith("2"):
            continue
        diagnostic = str(block.get("Diagnostic-Code", "")).partition(";")[2].strip()
        reason = without_addresses(f"{status} {diagnostic}".strip())
        found.append(Bounce("hard" if status.startswith("5") else "soft", status, reason, "dsn"))
    if not found:
        return None
    return min(found, key=lambda b: b.kind != "hard")
