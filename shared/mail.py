"""Building email messages safely: one-line headers, encoded names, sandbox redirection.

Header values are reduced to a single line before they reach ``EmailMessage`` (which would refuse
a CR or LF anyway), and addresses are always ``Address`` objects (display names quoted or encoded
by the email package), so nothing a supporter types can add a header or a recipient.
"""

from __future__ import annotations

import binascii
import email.policy
import re
import sys
from datetime import UTC, datetime
from email.charset import Charset
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

INTENDED_HEADER = "X-DearMP-Intended-Recipient"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


class _TreeOnDemand:
    """For address headers set from ``Address`` objects (every one we build): the stdlib parses
    the text of the address it was just given, only to have a tree to fold with when sending,
    which ``_Policy`` rarely needs. Here that tree is parsed the first time it is asked for.
    Value, groups and (no) defects are the stdlib's own: it computes them without the tree."""

    @classmethod
    def parse(cls, value: Any, kwds: dict[str, Any]) -> None:
        if not isinstance(value, str):
            kwds["parse_tree"] = None  # the stdlib parses only when no tree was given
        super().parse(value, kwds)  # type: ignore[misc]

    @property
    def _parse_tree(self) -> Any:
        tree = self.__dict__.get("_tree")
        if tree is None:
            tree = self.__dict__["_tree"] = self.value_parser(str(self))  # type: ignore[attr-defined]
        return tree

    @_parse_tree.setter
    def _parse_tree(self, tree: Any) -> None:
        self.__dict__["_tree"] = tree

    def fold(self, *, policy: Any) -> str:
        """Under any policy (ours, or the stdlib's SMTP one that DKIM signing writes with)."""
        folded = _folded_address(self, policy)
        return folded if folded is not None else super().fold(policy=policy)  # type: ignore[misc]


class _Registry(HeaderRegistry):
    """The standard header classes, created once per header name instead of once per header
    set (the stdlib builds a new class every time: a tenth of the cost of building a message)."""

    @lru_cache(maxsize=256)  # noqa: B019 - one registry per process, kept for its lifetime
    def __getitem__(self, name: str) -> type:
        cls = super().__getitem__(name)
        if issubclass(cls, AddressHeader):
            return type(cls.__name__, (_TreeOnDemand, cls), {})
        return cls  # type: ignore[no-any-return]


# What a header may be written as it is: printable ASCII, no literal RFC 2047 encoded word.
_WRITE_AS_IS = re.compile(r"(?!.*=\?)[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


class _Policy(email.policy.EmailPolicy):
    """The default (RFC 5322, strict) policy, only faster at writing headers out.

    The email package folds every header through its full parse tree when a message is sent: two
    thirds of the mailer's CPU. A header whose (parsed, quoted) value is printable ASCII that fits
    on one line folds to exactly ``Name: value``, so it is written that way directly; anything
    else (non-ASCII names, long subjects) still goes through the package's folding."""

    def _fold(self, name: str, value: Any, refold_binary: bool = False) -> str:
        if not hasattr(value, "name"):  # not a parsed header object (a str subclass)
            return super()._fold(name, value, refold_binary)  # type: ignore[misc,no-any-return]
        # Header objects are immutable and the repeated ones are shared (see _header): each
        # remembers how it was last written, for this name and these policy settings.
        key = (name, self.linesep, self.max_line_length, self.utf8)
        written = value.__dict__.get("_dearmp_written")
        if written is not None and written[0] == key:
            return written[1]  # type: ignore[no-any-return]
        text = value if _WRITE_AS_IS.fullmatch(value) else _one_address(value)
        line = f"{name}: {text}"
        if text and len(line) <= (self.max_line_length or sys.maxsize) and not self.utf8:
            folded = line + self.linesep
        else:
            folded = super()._fold(name, value, refold_binary)  # type: ignore[misc]
        value.__dict__["_dearmp_written"] = (key, folded)
        return folded  # type: ignore[no-any-return]


_UTF8 = Charset("utf-8")


def _one_address(header: Any) -> str | None:
    """``=?utf-8?...?= <addr>`` for a header holding one address whose display name is not ASCII
    (a supporter called Siân): one RFC 2047 encoded word, as the package itself writes it when it
    fits on a line. The encoded word holds no space, quote or line break, whatever the name."""
    addresses = getattr(header, "addresses", None)
    if not addresses or len(addresses) != 1 or len(header.groups) != 1:
        return None
    name, addr_spec = addresses[0].display_name, addresses[0].addr_spec
    if not name.isprintable() or name != name.strip() or not _WRITE_AS_IS.fullmatch(addr_spec):
        return None
    return f"{_UTF8.header_encode(name)} <{addr_spec}>"


def _folded_address(header: Any, policy: Any) -> str | None:
    """A header holding one named address that does not fit on a line, folded by us: the
    display name as RFC 2047 encoded words (each ending at a space of the name, the space
    inside it), one or more a line, then the address. The email package folds such a header
    wrongly: a quoted name with a colon or a comma ("Children first: guardians, now and
    always, …") loses its quotes when folded, and the header then parses as a group of several
    addresses. An encoded word holds no special character, whatever the name."""
    addresses = getattr(header, "addresses", None)
    if not addresses or len(addresses) != 1 or len(header.groups) != 1:
        return None
    display, addr_spec = addresses[0].display_name, addresses[0].addr_spec
    width, linesep = policy.max_line_length or 78, policy.linesep
    line = f"{header.name}: {header}"
    if not display or policy.utf8 or (line.isascii() and len(line) <= width):
        return None  # the package writes these right
    if not _WRITE_AS_IS.fullmatch(addr_spec):
        return None
    chunks: list[str] = []
    for piece in re.findall(r"\S+\s*", " ".join(display.split())):
        if chunks and len(_UTF8.header_encode(chunks[-1] + piece)) <= 75:
            chunks[-1] += piece
        else:
            chunks.append(piece)
    tokens = [_UTF8.header_encode(chunk) for chunk in chunks]
    tokens.append(f"<{addr_spec}>")
    lines = [f"{header.name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > width and lines[-1] != f"{header.name}:":
            lines.append("")
        lines[-1] += " " + token
    return linesep.join(lines) + linesep


POLICY = _Policy(header_factory=_Registry())


def with_from_name(msg: EmailMessage, name: str) -> EmailMessage:
    """``msg`` with ``name`` as its From's display name, the address unchanged (the header is
    built as ``build_message`` builds it)."""
    address = msg["From"].addresses[0].addr_spec
    del msg["From"]
    msg["From"] = _address_header("From", one_line(name), address)
    return msg


@lru_cache(maxsize=4096)
def _address_header(field: str, display_name: str, addr_spec: str) -> object:
    """The parsed header, built once per (field, name, address): the service's own From and a
    target's To repeat on every message. Header objects are immutable, so sharing them is safe."""
    return POLICY.header_factory(field, _address(display_name, addr_spec))


@lru_cache(maxsize=4096)
def _address(display_name: str, addr_spec: str) -> Address:
    """An ``Address``, immutable, so safe to share (a letter's Reply-To and the supporter's copy
    use one). The address itself is checked (parsed) once, however many names go with it: the
    service's own letters@ address goes with every supporter's name."""
    username, domain = _checked_addr_spec(addr_spec)
    return Address(display_name=display_name, username=username, domain=domain)


@lru_cache(maxsize=4096)
def _checked_addr_spec(addr_spec: str) -> tuple[str, str]:
    checked = Address(addr_spec=addr_spec)  # raises ValueError for anything not an address
    return checked.username, checked.domain


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


HEADER_TEXT_MAX = 200


def one_line(value: str, limit: int = HEADER_TEXT_MAX) -> str:
    """A single line of text, safe in a header: no control characters, and no literal RFC 2047
    encoded words (which a mail client would decode, CR/LF and all)."""
    text = _CONTROL.sub(" ", value or "").replace("=?", "= ?").replace("?=", "? =")
    return text.strip()[:limit]


VIA = " via Dear MP"


def via_name(name: str) -> str:
    """ "<name> via Dear MP" as a From name: the name shortened, never the " via Dear MP" (which
    tells the reader the supporter did not send it from their own mailbox), however long."""
    return one_line(name, HEADER_TEXT_MAX - len(VIA)) + VIA


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


_NEWLINE = re.compile(r"\r\n|\r|\n")


def smtp_bytes(msg: EmailMessage) -> bytes | None:
    """The message exactly as ``smtplib.send_message`` writes it (the email package's generator,
    CRLF line ends), for a single-part message whose body is already 7-bit text (every message
    ``build_message`` makes without HTML): headers as ``_Policy`` folds them, a blank line, the
    body. None for anything else (multipart, Bcc, a non-ASCII body): send it the usual way."""
    payload = msg._payload  # type: ignore[attr-defined]  # the stdlib's own storage
    if msg.is_multipart() or not isinstance(payload, str) or not payload.isascii():
        return None
    if "Bcc" in msg or "Resent-Bcc" in msg:
        return None  # send_message removes these: leave it to do so
    policy = msg.policy.clone(linesep="\r\n")
    head = b"".join(policy.fold_binary(name, value) for name, value in msg.raw_items())
    return head + b"\r\n" + _NEWLINE.sub("\r\n", payload).encode("ascii")
