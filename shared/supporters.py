"""Who a supporter is, across services: the normalised email, a keyed hash of it, masking.

Erasure is keyed by the normalised email: ``dearmp supporters erase EMAIL`` publishes
``supporter.erasure_requested`` with it, and each service removes the personal data it holds for
every row whose email normalises to the same value (``delete_rows_of``). ``normalise_email`` is
defined here only; intake uses it to store ``signatures.email_normalised``, so every service
normalises an address the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Providers that ignore dots and/or +tags in the local part, as intake treats them.
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")  # one mailbox, two domains
_GMAIL = GMAIL_DOMAINS
_PLUS_TAGS = (
    "outlook.com",
    "hotmail.com",
    "live.com",
    "fastmail.com",
    "proton.me",
    "protonmail.com",
    "icloud.com",
)
_ADDRESS = re.compile(r"[^\s<>@\"',;:]+@[^\s<>\"',;:]+")


def normalise_email(email: str) -> str:
    """Lower-case; for providers that ignore them, drop dots and +tags from the local part."""
    local, _, domain = email.strip().lower().rpartition("@")
    if domain in _GMAIL:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    elif domain in _PLUS_TAGS:
        local = local.split("+", 1)[0]
    return f"{local}@{domain}"


def same_domain(column: sa.ColumnElement[str], normalised: str) -> sa.ColumnElement[bool]:
    """A SQL pre-filter for rows whose email may normalise to ``normalised``: same domain (or an
    equivalent one), case-insensitively. Compare ``normalise_email`` in Python on what it finds."""
    domain = normalised.rpartition("@")[2]
    domains = _GMAIL if domain in _GMAIL else (domain,)
    return sa.or_(*(sa.func.lower(column).endswith(f"@{d}", autoescape=True) for d in domains))


def delete_rows_of(
    conn: Connection,
    table: sa.Table,
    key: sa.ColumnElement[object],
    email: sa.ColumnElement[str],
    normalised: str,
) -> int:
    """Delete the rows of ``table`` whose ``email`` normalises to ``normalised`` (an erasure):
    a same-domain pre-filter in SQL, then ``normalise_email`` on what it finds. Returns how many
    rows went."""
    found = conn.execute(sa.select(key, email).where(same_domain(email, normalised))).all()
    ids = [row[0] for row in found if normalise_email(row[1]) == normalised]
    if ids:
        conn.execute(table.delete().where(key.in_(ids)))
    return len(ids)


def supporter_key(secret: str, email: str) -> str:
    """A keyed hash of the normalised email: links a supporter's rows without storing the address."""
    digest = hmac.new(secret.encode(), normalise_email(email).encode(), hashlib.sha256)
    return digest.hexdigest()


def mask_email(email: str) -> str:
    """``j***@example.org``: enough for staff to tell cases apart, not the address itself."""
    local, at, domain = (email or "").strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_addresses(text: str) -> str:
    """Every email address in free text (an SMTP error, say) masked."""
    return _ADDRESS.sub(lambda m: mask_email(m.group(0)), text or "")


def event_names(payload: dict[str, object], address: str) -> bool:
    """Whether an event's payload names the person with this normalised address: its supporter's
    email, or an ``email`` of its own."""
    supporter = payload.get("supporter")
    typed = supporter.get("email") if isinstance(supporter, dict) else payload.get("email")
    return isinstance(typed, str) and normalise_email(typed) == address
