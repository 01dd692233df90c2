"""DKIM signatures on everything we send (dkimpy), when the operator configures a key.

Letters go out "From: <supporter> via Dear MP <letters@MAIL_DOMAIN>": an MP's office checks the
From domain with DMARC, which passes when the message carries a valid DKIM signature of that
domain (or SPF passes for an aligned envelope sender). With ``DEARMP_DKIM_SELECTOR`` and
``DEARMP_DKIM_PRIVATE_KEY_FILE`` set, every message the mailer and the fan-out hand to SMTP is
signed with that key for ``DEARMP_DKIM_DOMAIN`` (default: ``DEARMP_MAIL_DOMAIN``); the operator
publishes the public key at ``<selector>._domainkey.<domain>`` (``dearmp dkim keygen`` writes a
key and prints the record; README "DNS for your mail domain").

Relaxed header and body canonicalisation (survives the re-folding and trailing-space changes
relays make); the headers a reader sees are signed, each once more as absent (oversigning) so
nobody can add a second From or Subject that a mail client would show instead.

Each signature expires (``x=``) ``SIGNATURE_LIFETIME`` (7 days) after it was made (``t=``): long
enough for any receiving server's retries, short enough that a copy somebody kept cannot be sent
on ("replayed") as a valid message of ours for ever. Receivers that check ``x=`` (dkimpy, with 10
hours' leeway for clocks) then treat the signature as broken.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.config import ConfigError, Settings

SIGNED_HEADERS = (
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"in-reply-to",
    b"references",
)


SIGNATURE_LIFETIME = 7 * 86400  # seconds from t= to x=


class _ExpiringSignature(dkim.DKIM):  # type: ignore[misc]
    """dkimpy's signer, with an expiry: its ``sign`` (1.1) writes ``t=`` but has no option for
    ``x=``, so the tag is added to the tags it hands to ``gen_header``, which folds, hashes and
    signs them (so ``x=`` is covered by the signature like every other tag)."""

    def __init__(self, message: bytes, lifetime: int) -> None:
        super().__init__(message)
        self.lifetime = lifetime

    def gen_header(self, fields: list[tuple[bytes, bytes]], *args: Any, **kw: Any) -> bytes:
        at = next(i for i, (tag, _) in enumerate(fields) if tag == b"t")
        expires = str(int(fields[at][1]) + self.lifetime).encode("ascii")
        fields = [*fields[: at + 1], (b"x", expires), *fields[at + 1 :]]
        return super().gen_header(fields, *args, **kw)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DkimSigner:
    selector: str
    domain: str
    private_key: bytes  # PEM
    lifetime: int = SIGNATURE_LIFETIME  # seconds a signature is good for (x= - t=)

    def sign(self, data: bytes) -> bytes:
        """``data`` (a whole message, CRLF line ends) with its DKIM-Signature header first."""
        present = {
            line.split(b":", 1)[0].strip().lower()
            for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            if line[:1] not in (b" ", b"\t") and b":" in line
        }
        # Each header present is signed, and once more (oversigned: see the module's doc).
        headers = [h for h in SIGNED_HEADERS if h in present]
        signature = _ExpiringSignature(data, self.lifetime).sign(
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers + headers,
        )
        return bytes(signature) + data

    def dns_record(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
        return dns_record(self.private_key)


def signer_for(settings: Settings) -> DkimSigner | None:
    """The configured signer, or None when DKIM is not configured (``ConfigError`` with one line
    when it is configured wrongly)."""
    if not settings.dkim_private_key_file and not settings.dkim_selector:
        return None
    if not settings.dkim_private_key_file or not settings.dkim_selector:
        raise ConfigError(
            "DKIM needs both DEARMP_DKIM_SELECTOR and DEARMP_DKIM_PRIVATE_KEY_FILE (or neither)"
        )
    path = Path(settings.dkim_private_key_file)
    try:
        pem = path.read_bytes()
        serialization.load_pem_private_key(pem, password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read the DKIM key {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not an unencrypted PEM private key") from None
    return DkimSigner(settings.dkim_selector, settings.dkim_domain or settings.mail_domain, pem)


def generate_key(bits: int = 2048) -> bytes:
    """A new RSA private key, PEM (PKCS#8)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def dns_record(private_key: bytes) -> str:
    """The DKIM TXT record (``v=DKIM1; k=rsa; p=…``) for the public half of ``private_key``."""
    key = serialization.load_pem_private_key(private_key, password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
