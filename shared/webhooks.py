"""Webhook endpoints: where an organisation wants its events POSTed (a CRM, a Zapier hook).

An organisation's owners add them at ``/admin/webhooks``, operators also with ``dearmp webhooks
add``; the updates service reads them when it records deliveries (``services/updates/webhooks.py``)
and sends them (``webhook_sender.py``). Each endpoint has its own secret, generated here and
shown once, that signs every delivery (``shared.webhook_signing``). An endpoint's address must be
``https://``; ``http://127.0.0.1`` only with ``DEARMP_WEBHOOKS_ALLOW_HTTP_LOCALHOST`` (tests,
development).
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from shared.reference import organisations, webhook_endpoints

SECRET_PREFIX = "whsec_"
MAX_URL = 2000
MAX_PER_ORGANISATION = 10


class WebhookError(ValueError):
    """An endpoint that cannot be added or removed; the message says why, in one line."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    organisation: str
    url: str
    created_at: datetime


def check_url(url: str, *, allow_http_localhost: bool = False) -> str:
    """The address as stored, or WebhookError saying what is wrong with it."""
    url = url.strip()
    if not url:
        raise WebhookError("give the endpoint's address (https://…)")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookError("the address must be one https:// address without spaces")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number is refused here
    except ValueError:
        raise WebhookError("the address is not a valid URL") from None
    local_http = allow_http_localhost and parts.scheme == "http" and parts.hostname == "127.0.0.1"
    if parts.scheme != "https" and not local_http:
        raise WebhookError("the address must start with https://")
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise WebhookError("the address must be https://host/path, without a password or #")
    if not local_http and ("." not in parts.hostname or _private_ip(parts.hostname)):
        raise WebhookError("the address must name a public host, like https://crm.example.org/")
    return url


def _private_ip(host: str) -> bool:
    """An address on this machine or a private network, written as such (a name that resolves
    to one is not caught here: see README, Webhooks)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def add_endpoint(
    conn: Connection, organisation: str, url: str, *, allow_http_localhost: bool = False
) -> tuple[Endpoint, str]:
    """Register ``url`` for the organisation; returns the endpoint and its secret (the only
    time the secret is given out)."""
    url = check_url(url, allow_http_localhost=allow_http_localhost)
    exists = conn.execute(
        sa.select(organisations.c.slug).where(organisations.c.slug == organisation)
    ).first()
    if exists is None:
        raise WebhookError(f"no organisation {organisation!r} (dearmp orgs list)")
    count = conn.execute(
        sa.select(sa.func.count()).where(webhook_endpoints.c.organisation == organisation)
    ).scalar_one()
    if count >= MAX_PER_ORGANISATION:
        raise WebhookError(f"an organisation may have at most {MAX_PER_ORGANISATION} endpoints")
    secret = new_secret()
    row = conn.execute(
        insert(webhook_endpoints)
        .values(organisation=organisation, url=url, secret=secret, created_at=datetime.now(UTC))
        .on_conflict_do_nothing(constraint="uq_webhook_endpoints_organisation_url")
        .returning(webhook_endpoints.c.id, webhook_endpoints.c.created_at)
    ).first()
    if row is None:
        raise WebhookError("that address is already registered for this organisation")
    return Endpoint(row.id, organisation, url, row.created_at), secret


def list_endpoints(conn: Connection, organisation: str | None) -> list[Endpoint]:
    """The organisation's endpoints (None: every organisation's), oldest first."""
    query = sa.select(
        webhook_endpoints.c.id,
        webhook_endpoints.c.organisation,
        webhook_endpoints.c.url,
        webhook_endpoints.c.created_at,
    ).order_by(webhook_endpoints.c.organisation, webhook_endpoints.c.id)
    if organisation is not None:
        query = query.where(webhook_endpoints.c.organisation == organisation)
    return [Endpoint(*row) for row in conn.execute(query)]


def remove_endpoint(conn: Connection, endpoint_id: int, organisation: str | None) -> bool:
    """Remove the endpoint (and its deliveries, pending or not); only the organisation's own
    when ``organisation`` is given. False: no such endpoint (for this organisation)."""
    if not 0 < endpoint_id < 2**63:
        return False
    query = webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint_id)
    if organisation is not None:
        query = query.where(webhook_endpoints.c.organisation == organisation)
    return conn.execute(query).rowcount > 0
