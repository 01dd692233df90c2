"""Rate limits that hold across intake replicas: fixed windows counted in Postgres.

Keys are HMACs of the IP address or normalised email (never the value itself), so the table
holds no personal data. Expired windows are swept now and then by whichever request is there.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.supporters import normalise_email


@dataclass(frozen=True)
class Limit:
    """``count`` hits per ``seconds``; parsed from "count/seconds" settings."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        count, _, seconds = text.partition("/")
        return cls(int(count), int(seconds or 60))


def client_bucket(address: str) -> str:
    """The unit a client is counted in: its IPv4 address, or its IPv6 /64 (a home or a phone is
    given a whole /64 and may use any address in it, so counting single IPv6 addresses would let
    one client through the limit as millions)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def limit_key(secret: str, kind: str, value: str) -> str:
    """The counter's key: an HMAC of ``value`` (a client, counted by ``client_bucket`` when
    ``kind`` names an address, or a normalised email)."""
    if kind.endswith("ip"):
        value = client_bucket(value)
    digest = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:40]}"


# Built once: this runs on every request.
HIT = sa.text(
    "INSERT INTO rate_limits (key, window_start, hits) VALUES (:key, :window, 1) "
    "ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits"
)
SWEEP = sa.text("DELETE FROM rate_limits WHERE window_start < :before")
SWEEP_SQL = "DELETE FROM rate_limits WHERE window_start < %(before)s"  # for psycopg directly
SWEEP_CHANCE = 0.002  # of requests, each sweeps windows more than a day old


def window_start(limit: Limit, now: datetime | None = None) -> datetime:
    epoch = int((now or datetime.now(UTC)).timestamp())
    return datetime.fromtimestamp(epoch - epoch % limit.seconds, UTC)


def hit(conn: Connection, key: str, limit: Limit, now: datetime | None = None) -> bool:
    """Count one hit; False when the key is over its limit for the current window."""
    now = now or datetime.now(UTC)
    hits = conn.execute(HIT, {"key": key, "window": window_start(limit, now)}).scalar_one()
    if random.random() < SWEEP_CHANCE:
        conn.execute(SWEEP, {"before": sweep_before(now)})
    return int(hits) <= limit.count


def sweep_before(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=1)


def forget_rate_limits(engine: Engine, secret: str, email: str) -> int:
    """Erasure: drop the address's rate-limit counters (keyed by an HMAC of it, but still the
    person's). Returns how many windows were removed."""
    key = limit_key(secret, "email", normalise_email(email))
    with engine.begin() as conn:
        return conn.execute(
            sa.text("DELETE FROM rate_limits WHERE key = :key"), {"key": key}
        ).rowcount
