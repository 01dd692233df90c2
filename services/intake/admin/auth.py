"""Staff authentication: argon2id passwords, signed server-side sessions.

- Passwords are hashed with argon2id (argon2-cffi); hashes made with older parameters are
  upgraded at the next successful login.
- Wrong passwords slow down whoever types them, per account and client, never lock the account
  (``throttle.py``, called by ``login.py``). Every refusal reads the same, whether the account
  exists or the password is wrong, and costs one hash verification per account of the address
  (one when it has none).
- A session is a random token: its SHA-256 is a ``staff_sessions`` row (deleted at logout), and
  the cookie carries the token signed with itsdangerous and a maximum age. The cookie is HttpOnly,
  SameSite=Strict and limited to ``/admin``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Connection

from services.intake.admin.models import staff, staff_sessions
from services.intake.admin.roles import Power, Role, can

SESSION_AGE = timedelta(hours=8)
COOKIE = "dearmp_staff"
COOKIE_PATH = "/admin"
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# Verified against when the account does not exist, so a refusal takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffMember:
    id: int
    email: str
    role: str = Role.OPERATOR
    organisation: str | None = None  # None: a platform operator, who sees every organisation

    def can(self, power: Power) -> bool:
        return can(self.role, power)


def normalise(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password must be at least {MIN_PASSWORD} characters"
    return None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(conn: Connection, email: str, password: str) -> StaffMember | None:
    """The account the password opens, if any (``login.py`` counts a failure). An address may
    have an account in several organisations, each with its own password: the password says
    which; should two share one, the oldest account opens."""
    rows = conn.execute(
        sa.select(staff).where(staff.c.email == normalise(email)).order_by(staff.c.id)
    ).all()
    if not rows:
        _verify(_DUMMY_HASH, password)
        return None
    row = next((r for r in rows if _verify(r.password_hash, password)), None)
    if row is None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(
            staff.update().where(staff.c.id == row.id).values(password_hash=_hasher.hash(password))
        )
    return StaffMember(row.id, row.email, row.role, row.organisation)


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="dearmp.staff-session")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(conn: Connection, member: StaffMember, secret: str) -> str:
    """Store a new session; return the cookie value."""
    now = datetime.now(UTC)
    conn.execute(staff_sessions.delete().where(staff_sessions.c.expires_at < now))
    token = secrets.token_urlsafe(32)
    conn.execute(
        staff_sessions.insert().values(
            token_hash=_token_hash(token),
            staff_id=member.id,
            created_at=now,
            expires_at=now + SESSION_AGE,
        )
    )
    return _serializer(secret).dumps(token)


def _token_from(cookie: str | None, secret: str) -> str | None:
    if not cookie:
        return None
    try:
        token = _serializer(secret).loads(cookie, max_age=int(SESSION_AGE.total_seconds()))
    except (BadSignature, TypeError, ValueError):
        return None
    return token if isinstance(token, str) else None


def session_member(conn: Connection, cookie: str | None, secret: str) -> StaffMember | None:
    """Who the session cookie belongs to, if it is valid, unexpired and not ended."""
    token = _token_from(cookie, secret)
    if token is None:
        return None
    row = conn.execute(
        sa.select(staff.c.id, staff.c.email, staff.c.role, staff.c.organisation)
        .join(staff_sessions, staff_sessions.c.staff_id == staff.c.id)
        .where(
            staff_sessions.c.token_hash == _token_hash(token),
            staff_sessions.c.expires_at > datetime.now(UTC),
        )
    ).first()
    return StaffMember(row.id, row.email, row.role, row.organisation) if row else None


def end_session(conn: Connection, cookie: str | None, secret: str) -> None:
    token = _token_from(cookie, secret)
    if token is not None:
        conn.execute(
            staff_sessions.delete().where(staff_sessions.c.token_hash == _token_hash(token))
        )


def set_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(SESSION_AGE.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=secure,
        path=COOKIE_PATH,
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
