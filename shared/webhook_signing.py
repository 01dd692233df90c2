"""How a webhook delivery is signed, and how a receiver checks it (README.md, "Webhooks").

Every POST carries:

- ``X-DearMP-Event-Id``: the event's id, the same on every attempt (the receiver's dedupe key);
- ``X-DearMP-Event-Type``: ``signature.confirmed`` or ``letter.sent``;
- ``X-DearMP-Timestamp``: when this attempt was signed, in Unix seconds;
- ``X-DearMP-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with the endpoint's secret, of
  the timestamp, a full stop and the body exactly as received (``f"{timestamp}.".encode() + body``).

A receiver recomputes the HMAC, compares in constant time, and refuses a timestamp more than five
minutes away from its clock (a replayed old request). ``verify`` is the reference.
"""

from __future__ import annotations

import hashlib
import hmac
import time

EVENT_ID = "X-DearMP-Event-Id"
EVENT_TYPE = "X-DearMP-Event-Type"
TIMESTAMP = "X-DearMP-Timestamp"
SIGNATURE = "X-DearMP-Signature"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-DearMP-Signature`` value for ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def headers(
    secret: str, event_id: str, event_type: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers of one attempt."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_ID: event_id,
        EVENT_TYPE: event_type,
        TIMESTAMP: str(timestamp),
        SIGNATURE: signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    timestamp: str,
    signed: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: True only for a signature made with ``secret`` over this body and
    timestamp, and a timestamp within ``tolerance`` seconds of now."""
    try:
        at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, at, body), signed)
