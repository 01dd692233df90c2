"""An update's copies as bytes, ready for SMTP, without the email package's per-message cost.

Building and flattening an ``EmailMessage`` costs a few milliseconds, more than the SMTP exchange
itself, and a fan-out repeats it for every subscriber. So the headers every copy shares (From,
Subject, Date, List-Id, List-Unsubscribe-Post, MIME-Version) are made once by
``shared.mail.build_message`` and flattened by the email package, which folds and encodes them;
what differs per subscriber is written here, and only from values checked to need no encoding:
an ASCII dot-atom address, a Message-ID and unsubscribe links made of URL-safe characters. The
two parts are base64 (any text, lines of 76). A copy that does not pass the checks (an address
with non-ASCII characters, say) is ``None``: the caller builds it with the email package instead.
"""

from __future__ import annotations

import base64
import re
import secrets
from email.message import EmailMessage

from services.updates.compose import Copy, UpdateMail
from shared.mail import INTENDED_HEADER, build_message

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SAFE_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
# Printable ASCII words separated by single spaces: nothing to fold, encode or inject.
SAFE_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
CRLF = b"\r\n"


def _part(content_type: bytes, text: str) -> bytes:
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", CRLF)
    return (
        b"Content-Type: " + content_type + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body
    )


class WireFormat:
    """The bytes of one update's copies; the shared head is made once."""

    def __init__(self, mail: UpdateMail):
        self.mail = mail
        self.heads: dict[str, bytes] = {}  # per language: the subject is translated
        self.boundary = f"=_dearmp_{secrets.token_hex(12)}".encode()

    def head(self, language: str) -> bytes:
        if language not in self.heads:
            sample = build_message(
                from_name=self.mail.content.sender_name,
                from_addr=self.mail.from_addr,
                to_name="",
                to_addr="nobody@example.invalid",
                subject=self.mail.parts(language)[0],
                text=".",
                message_id="<sample@example.invalid>",
                headers=self.mail.fixed_headers,
            )
            self.heads[language] = shared_head(sample)
        return self.heads[language]

    def render(self, to: str, copy: Copy, intended: str | None) -> bytes | None:
        """The copy for address ``to``; ``intended`` adds the sandbox's intended-recipient header."""
        if len(to) > 254 or not SAFE_ADDRESS.fullmatch(to):
            return None
        if intended is not None and intended != to:
            return None
        if not (
            SAFE_VALUE.fullmatch(copy.message_id) and SAFE_VALUE.fullmatch(copy.list_unsubscribe)
        ):
            return None
        link, _, mailto = copy.list_unsubscribe.partition(", ")
        lines = [
            b"To: " + to.encode(),
            b"Message-ID: " + copy.message_id.encode(),
            # Folded between the two links; a link itself cannot be folded (RFC 2369).
            b"List-Unsubscribe: " + link.encode() + b",\r\n " + mailto.encode(),
        ]
        if intended is not None:
            lines.append(INTENDED_HEADER.encode() + b": " + intended.encode())
        dash = b"--" + self.boundary
        return b"".join(
            (
                self.head(copy.language),
                CRLF.join(lines),
                CRLF,
                b'Content-Type: multipart/alternative; boundary="' + self.boundary + b'"\r\n',
                CRLF,
                dash + CRLF,
                _part(b"text/plain", copy.text),
                dash + CRLF,
                _part(b"text/html", copy.html),
                dash + b"--" + CRLF,
            )
        )


def shared_head(sample: EmailMessage) -> bytes:
    """The header block of ``sample`` without its recipient, id and content (CRLF line ends)."""
    del sample["To"]
    del sample["Message-ID"]
    sample.clear_content()
    if "MIME-Version" not in sample:
        sample["MIME-Version"] = "1.0"
    flat = sample.as_bytes(policy=sample.policy.clone(linesep="\r\n"))
    return flat.rstrip(CRLF) + CRLF
