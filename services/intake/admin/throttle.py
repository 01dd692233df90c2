"""Wrong passwords at /admin/login slow the one who types them, never lock the account.

Failures are counted per (account, client) pair and per client, in the fixed windows of intake's
``rate_limits`` table (``ratelimit.py``: HMAC keys, Postgres, so every replica counts the same).
A pair that reached a tier's count waits until that tier's window ends: after 5 wrong passwords
the rest of the 5 minutes, after 10 the rest of the hour, after 20 the rest of the UTC day. A
client that got 30 wrong in an hour (100 in a day), whatever the accounts, waits likewise. Another
client, with the right password, is not held up: a stranger cannot lock the real user out. The
account counted is the address typed, whether or not it has an account, so the answers tell
nobody which accounts exist. A right password clears that pair (never the client's count: an
attacker with one account of their own must not reset it). ``dearmp staff unlock EMAIL`` clears
every pair of an address.

Attempts of one pair, and of one client, take their turn under transaction-scoped advisory
locks, so parallel guesses cannot all pass the check before one is counted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake import ratelimit
from services.intake.models import rate_limits

PAIR_TIERS = (ratelimit.Limit(5, 300), ratelimit.Limit(10, 3600), ratelimit.Limit(20, 86400))
CLIENT_TIERS = (ratelimit.Limit(30, 3600), ratelimit.Limit(100, 86400))
PREFIX = "staff-login"
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def _digest(secret: str, kind: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:24]


def account_prefix(secret: str, address: str) -> str:
    """The start of every key counting ``address`` (normalised), whichever client typed it."""
    return f"{PREFIX}:{_digest(secret, 'staff-login-account', address)}:"


@dataclass(frozen=True)
class LoginKeys:
    pair: str  # this address from this client (each tier's key adds ":<seconds>")
    client: str  # this client, whatever the address

    @classmethod
    def of(cls, secret: str, address: str, client: str) -> LoginKeys:
        who = _digest(secret, "staff-login-client", ratelimit.client_bucket(client))
        return cls(pair=account_prefix(secret, address) + who, client=f"{PREFIX}:*:{who}")

    def tiers(self) -> list[tuple[str, ratelimit.Limit]]:
        """Each counter: its key (one per tier, as windows of two lengths may start at the same
        moment) and its limit."""
        return [(f"{self.client}:{t.seconds}", t) for t in CLIENT_TIERS] + [
            (f"{self.pair}:{t.seconds}", t) for t in PAIR_TIERS
        ]


@dataclass(frozen=True)
class Wait:
    until: datetime
    whole_client: bool  # the client's own limit, whatever the account

    def minutes(self, now: datetime) -> int:
        return max(1, -(-int((self.until - now).total_seconds()) // 60))


def take_turn(conn: Connection, keys: LoginKeys) -> None:
    """Wait for any other attempt of this client, then of this pair, to commit (in that order
    everywhere, so two attempts never wait for each other)."""
    conn.execute(_LOCK, {"key": keys.client})
    conn.execute(_LOCK, {"key": keys.pair})


def waiting(conn: Connection, keys: LoginKeys, now: datetime | None = None) -> Wait | None:
    """Whether this attempt must wait, and until when; None if it may try."""
    now = now or datetime.now(UTC)
    tiers = keys.tiers()
    windows = [(key, ratelimit.window_start(limit, now)) for key, limit in tiers]
    counted = dict(
        ((r.key, r.window_start), r.hits)
        for r in conn.execute(
            sa.select(rate_limits).where(
                sa.tuple_(rate_limits.c.key, rate_limits.c.window_start).in_(windows)
            )
        )
    )
    full = [
        (start + timedelta(seconds=limit.seconds), key.startswith(keys.client))
        for (key, limit), (_, start) in zip(tiers, windows, strict=True)
        if counted.get((key, start), 0) >= limit.count
    ]
    if not full:
        return None
    until, whole_client = max(full)
    return Wait(until, whole_client)


def count_failure(conn: Connection, keys: LoginKeys, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    for key, limit in keys.tiers():
        ratelimit.hit(conn, key, limit, now)


def forgive(conn: Connection, keys: LoginKeys) -> None:
    """The right password: this pair starts afresh."""
    conn.execute(rate_limits.delete().where(rate_limits.c.key.startswith(keys.pair + ":")))


def forget_account(conn: Connection, secret: str, address: str) -> int:
    """Clear the failures counted for ``address`` from every client; returns from how many."""
    prefix = account_prefix(secret, address)
    removed = conn.execute(
        rate_limits.delete()
        .where(rate_limits.c.key.startswith(prefix, autoescape=True))
        .returning(rate_limits.c.key)
    ).scalars()
    return len({key.rsplit(":", 1)[0] for key in removed})
