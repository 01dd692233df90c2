"""Did your MP reply? the signed links in the question email and the answers they carry.

The mailer makes the links (``services/mailer/replies.py``); intake reads them
(``GET|POST /reply/{token}/{answer}``, ``services/intake/replies.py``). One token per signature,
signed for this purpose only; the answer is in the path, so the three links share it and a
supporter may change their mind. Links last ``MAX_AGE`` (60 days: the question, its reminder a
week or more later, and time to answer it).
"""

from __future__ import annotations

import uuid

from shared.tokens import InvalidToken, make_token, read_token

PURPOSE = "reply"
MAX_AGE = 60 * 24 * 3600
# What the answer is called in the path, and as stored (``reply_answers.answer``).
ANSWERS = {"yes": "yes", "not-yet": "not_yet", "no": "no"}


def make_reply_token(secret: str, signature_id: uuid.UUID) -> str:
    return make_token(secret, PURPOSE, str(signature_id))


def read_reply_token(secret: str, token: str) -> uuid.UUID:
    """The signature a token names; ``InvalidToken`` (reason "expired" or "invalid") if it is
    forged, mangled or too old."""
    value = read_token(secret, PURPOSE, token, max_age=MAX_AGE)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidToken("invalid") from None


def reply_url(base_url: str, token: str, answer: str) -> str:
    """The link for one answer (``answer``: a key of ``ANSWERS``)."""
    return f"{base_url.rstrip('/')}/reply/{token}/{answer}"
