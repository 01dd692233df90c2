"""What of a forwarded message may be read as a bounce (issue 25).

An MP's office that auto-replies to a letter often quotes it, or attaches it, and the letter
carries a supporter's own words: read as a bounce, a comment such as "Undeliverable Address:
<the MP's address>" would flag the MP's address for every organisation. So:

- An auto-reply (RFC 3834 ``Auto-Submitted`` other than ``no``, ``X-Autoreply``, ``X-Autorespond``,
  ``Precedence: auto_reply|bulk|junk|list``) is no bounce. This is asked only of a message that is
  not an RFC 3464 report: mail servers mark their delivery reports ``Auto-Submitted:
  auto-replied`` too (Postfix, Exim), and a report is recognised by its structure, which nobody
  can make by quoting text (``parse.delivery_status``).
- flufl.bounce's heuristics see only ``own_text``: a copy of the message without any attached
  message (``message/*``, ``text/rfc822-headers``: the returned original), without parts that
  are not plain text, and without quoted lines (``>``).
"""

from __future__ import annotations

import copy
from email.message import EmailMessage, Message

_AUTO_PRECEDENCE = frozenset(("auto_reply", "bulk", "junk", "list"))


def is_auto_reply(message: Message) -> bool:
    """True for a message an auto-responder (or a list) sent, by its RFC 3834 headers."""
    submitted = str(message.get("Auto-Submitted", "")).partition(";")[0].strip().lower()
    if submitted not in ("", "no"):
        return True
    if "X-Autoreply" in message or "X-Autorespond" in message:
        return True
    precedence = str(message.get("Precedence", "")).strip().lower()
    return precedence in _AUTO_PRECEDENCE


def own_text(message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` with its structure and headers (flufl's detectors look at both),
    keeping only the sender's own plain text: no attached original, no quoted lines."""
    kept = copy.deepcopy(message)
    if _prune(kept) is None:  # nothing of its own to read (e.g. only an HTML body)
        kept.set_payload("")
    return kept


def _prune(part: Message) -> Message | None:
    """``part`` cut down in place to its own plain text, or None when nothing of it is kept."""
    if part.get_content_maintype() == "message" or part.get_content_type() == "text/rfc822-headers":
        return None
    if part.is_multipart():
        children = part.get_payload()
        kept: list[Message | str] = [
            c for c in children if isinstance(c, Message) and _prune(c) is not None
        ]
        part.set_payload(kept)
        return part
    if part.get_content_type() != "text/plain":
        return None
    unquoted = [line for line in _text(part).splitlines() if not line.lstrip().startswith(">")]
    part.set_payload("\n".join(unquoted) + "\n")
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = "8bit"
    part.set_param("charset", "utf-8")
    return part


def _text(part: Message) -> str:
    """The part's text, decoded (an unknown charset read as UTF-8, undecodable bytes replaced)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    try:
        return data.decode(part.get_content_charset() or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")
