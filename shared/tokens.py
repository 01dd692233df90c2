"""Signed, single-purpose, expiring tokens for links in emails (itsdangerous)."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM_MAX_AGE = 7 * 24 * 3600

# Purposes a signature's id is signed for; a token opens only the page of its own purpose.
CONFIRM = "confirm"  # the confirmation email's link: the letter, who it is from, the button
THANKS = "thanks"  # the thank-you page: the letter's progress, never the supporter's details


class InvalidToken(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid"


def make_token(secret: str, purpose: str, value: str) -> str:
    return URLSafeTimedSerializer(secret, salt=f"dearmp.{purpose}").dumps(value)


def read_token(secret: str, purpose: str, token: str, max_age: int = CONFIRM_MAX_AGE) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=f"dearmp.{purpose}")
    try:
        return str(serializer.loads(token, max_age=max_age))
    except SignatureExpired:
        raise InvalidToken("expired") from None
    except BadSignature:
        raise InvalidToken("invalid") from None
