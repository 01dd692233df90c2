"""The link in every update email that lets a subscriber leave (or come back).

The token is signed for this one purpose and names the subscriber (their signature id) and the
campaign. It lasts for years: an old email's unsubscribe link must still work. The updates
service makes the links; intake reads them (``GET|POST /unsubscribe/{token}``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from itsdangerous import URLSafeTimedSerializer

from shared.tokens import InvalidToken, read_token

PURPOSE = "unsubscribe"
MAX_AGE = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class Subscription:
    signature_id: uuid.UUID
    campaign: str


@lru_cache(maxsize=4)
def _signer(secret: str) -> URLSafeTimedSerializer:
    # As shared.tokens.make_token signs for this purpose, kept: a fan-out signs one per copy.
    return URLSafeTimedSerializer(secret, salt=f"dearmp.{PURPOSE}")


def make_unsubscribe_token(secret: str, signature_id: uuid.UUID, campaign: str) -> str:
    return str(_signer(secret).dumps(f"{signature_id}/{campaign}"))


def read_unsubscribe_token(secret: str, token: str) -> Subscription:
    """The subscription a token names; ``InvalidToken`` if it is forged, mangled or too old."""
    value = read_token(secret, PURPOSE, token, max_age=MAX_AGE)
    signature, sep, campaign = value.partition("/")
    try:
        signature_id = uuid.UUID(signature)
    except ValueError:
        raise InvalidToken("invalid") from None
    if not sep or not campaign:
        raise InvalidToken("invalid")
    return Subscription(signature_id, campaign)


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/unsubscribe/{token}"


def unsubscribe_mailto(mail_domain: str, token: str) -> str:
    """The ``mailto:`` alternative of List-Unsubscribe (RFC 2369): the token in the subject."""
    return f"mailto:unsubscribe@{mail_domain}?subject=unsubscribe%20{quote(token, safe=_SAFE)}"


_SAFE = "-_.~"  # URL-safe base64 and the dots between a token's parts: nothing to escape
