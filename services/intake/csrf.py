"""CSRF protection for every form: a random cookie, and a signed copy of it in the form.

A cross-site page cannot read the cookie, so it cannot produce the matching signed token.
Works without JavaScript; the cookie is HttpOnly and SameSite=Lax.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "dearmp_csrf"
FIELD = "csrf_token"
MAX_AGE = 24 * 3600


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="dearmp.csrf")


def issue(request: Request, secret: str) -> tuple[str, str]:
    """(cookie value, form token) for this visitor; reuses their cookie when they have one."""
    cookie = request.cookies.get(COOKIE) or secrets.token_urlsafe(24)
    return cookie, _serializer(secret).dumps(cookie)


def set_cookie(response: Response, cookie: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, cookie, max_age=MAX_AGE, httponly=True, samesite="lax", secure=secure, path="/"
    )


def valid(request: Request, token: str | None, secret: str) -> bool:
    cookie = request.cookies.get(COOKIE)
    if not cookie or not token:
        return False
    try:
        return bool(
            secrets.compare_digest(_serializer(secret).loads(token, max_age=MAX_AGE), cookie)
        )
    except (BadSignature, TypeError):
        return False
