"""VERP: every email's own return path, naming its ``letters`` row, signed.

An email goes out with the envelope sender ``bounces+<id>-<mac>@DEARMP_MAIL_DOMAIN``: ``id`` is
its ``letters`` row, ``mac`` the first 16 hex digits of an HMAC-SHA256 of it under
``DEARMP_SECRET_KEY``. A bounce comes back to that address, so the letter it concerns is known
without reading the bounce's (often mangled) text, and nobody without the secret can forge a
bounce that marks someone else's letter. Lower-case hex and digits only: mail servers that fold
the local part's case do not break it. The From header is not changed.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from shared.config import Settings

_TOKEN = re.compile(r"(\d{1,18})-([0-9a-f]{16})")


def _mac(secret: str, letter_id: int) -> str:
    digest = hmac.new(secret.encode(), f"verp:{letter_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def return_path(settings: Settings, letter_id: int) -> str | None:
    """The envelope sender for the email in ``letters`` row ``letter_id`` (None: VERP is off,
    ``DEARMP_BOUNCES_LOCAL_PART`` empty, and the From address is the envelope sender)."""
    local = settings.bounces_local_part
    if not local:
        return None
    return f"{local}+{letter_id}-{_mac(settings.secret_key, letter_id)}@{settings.mail_domain}"


def letter_id_from(address: str, secret: str) -> int | None:
    """The ``letters`` row a return path names, or None (not ours, malformed, or a wrong MAC)."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    _, plus, token = local.partition("+")
    found = _TOKEN.fullmatch(token) if plus else None
    if found is None:
        return None
    letter_id = int(found.group(1))
    if not hmac.compare_digest(found.group(2), _mac(secret, letter_id)):
        return None
    return letter_id
