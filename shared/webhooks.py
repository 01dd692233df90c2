"""Webhook endpoints: where an organisation wants its events POSTed (a CRM, a Zapier hook).

An organisation's owners add them at ``/admin/webhooks``, operators also with ``dearmp webhooks
add``; the updates service reads them when it records deliveries (``services/updates/webhooks.py``)
and sends them (``webhook_sender.py``). Each endpoint has its own secret, generated here and
shown once, that signs every delivery (``shared.webhook_signing``).

Where an endpoint may point is decided here, twice. When it is added (``check_url``): an
``https://`` address whose host is written in its one canonical form, a lower-case DNS name of
two or more labels under a real top-level domain, or an IP address as ``ipaddress`` writes it,
and not a special-use name or a non-public address (so ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``,
``2130706433`` and ``localhost.`` are refused: each is an address that a resolver would read as a
private one). When it is sent (``addresses_to_send_to``): the stored address is checked again,
the name resolved once, and every address it resolves to must be public (``is_public``); the
sender connects to those addresses and nothing else, so a name cannot resolve to one address for
the check and another for the request. ``http://127.0.0.1`` is allowed, and not resolved, only
with ``DEARMP_WEBHOOKS_ALLOW_HTTP_LOCALHOST`` (tests, development).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from shared.reference import organisations, webhook_endpoints

SECRET_PREFIX = "whsec_"
MAX_URL = 2000
MAX_PER_ORGANISATION = 10
LOCAL_HTTP_HOST = "127.0.0.1"
# What a send records when the address is not one it may connect to: the same words whatever
# the reason (a private address, a closed port and an open one look alike in the failure log).
NOT_PUBLIC = "refused: not a public address"

# One DNS label as written in a hostname (letters, digits, hyphens inside), lower case.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Top-level names that never lead to a public host: special-use (RFC 6761, 6762, 7686, 9476),
# and those used inside networks (ICANN's name-collision list).
_PRIVATE_TLDS = frozenset(
    {
        "localhost",
        "local",
        "localdomain",
        "internal",
        "intranet",
        "lan",
        "home",
        "corp",
        "private",
        "invalid",
        "test",
        "onion",
        "alt",
        "arpa",
    }
)
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Resolve = Callable[[str, int], list[str]]


class WebhookError(ValueError):
    """An endpoint that cannot be added or removed; the message says why, in one line."""


class AddressRefused(WebhookError):
    """At send time: the endpoint's address is not one to connect to (``NOT_PUBLIC``)."""


class Unresolvable(WebhookError):
    """At send time: the endpoint's host name does not resolve."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    organisation: str
    url: str
    created_at: datetime


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: ``host`` as the address names it (TLS's server name and the
    certificate's), ``host_header`` (with the port if one is written), the request's path and
    query, and ``addresses``, the checked IP addresses to connect to, in the resolver's order."""

    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    addresses: tuple[str, ...]


def check_url(url: str, *, allow_http_localhost: bool = False) -> str:
    """The address as stored (its host in lower case), or WebhookError saying what is wrong
    with it. No look-up: a name's addresses are checked when it is sent to."""
    url = url.strip()
    if not url:
        raise WebhookError("give the endpoint's address (https://…)")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookError("the address must be one https:// address without spaces")
    if not url.isascii():
        raise WebhookError("write the address in ASCII (a host's xn-- form, a path %-encoded)")
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number is refused here
    except ValueError:
        raise WebhookError("the address is not a valid URL") from None
    host = parts.hostname or ""
    local_http = allow_http_localhost and parts.scheme == "http" and host == LOCAL_HTTP_HOST
    if parts.scheme != "https" and not local_http:
        raise WebhookError("the address must start with https://")
    if not host or "@" in parts.netloc or parts.fragment:
        raise WebhookError("the address must be https://host/path, without a password or #")
    if not local_http and not _public_host(host):
        raise WebhookError(
            "the address must name a public host, written as usual (like crm.example.org or "
            f"203.0.113.7), not {host[:60]!r}"
        )
    if port == 0:
        raise WebhookError("the address's port must be a number from 1 to 65535")
    netloc = (f"[{host}]" if ":" in host else host) + ("" if port is None else f":{port}")
    if parts.netloc.lower() != netloc:
        raise WebhookError(f"write the address's host and port as {netloc!r}")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _public_host(host: str) -> bool:
    """A public IP address written as ``ipaddress`` writes it, or a DNS name in its canonical
    form (lower-case labels, no trailing dot) under a top-level domain that is a word: a last
    label of digits or ``0x…`` is how ``127.1`` and ``0x7f.0.0.1`` are read as addresses."""
    if "%" in host:  # an IPv6 zone: an interface of this machine
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return (
            len(host) <= 253
            and len(labels) >= 2
            and all(_LABEL.fullmatch(label) for label in labels)
            and labels[-1][0].isalpha()
            and labels[-1] not in _PRIVATE_TLDS
        )
    return str(ip) == host and is_public(ip)


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address on the public internet: ``is_global`` and neither multicast nor reserved. An
    IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) is as public as that one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            return is_public(carried)
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives for a TCP connection to ``host``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def target_of(
    url: str, *, allow_http_localhost: bool = False, resolve: Resolve = resolve_host
) -> Target:
    """Where to send a delivery for ``url``: the stored address checked again (it may predate
    these rules), its name resolved once, every address it resolves to public. Raises
    AddressRefused (``NOT_PUBLIC``, or what ``check_url`` says) or Unresolvable."""
    try:
        url = check_url(url, allow_http_localhost=allow_http_localhost)
    except WebhookError as exc:
        raise AddressRefused(f"refused: {exc}") from None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if _is_ip(host):
        addresses = [host]  # checked by check_url, or the allowed http://127.0.0.1
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise Unresolvable("could not resolve the host") from None
        if not addresses:
            raise Unresolvable("could not resolve the host")
        # Every address, not just the first: a name with a public and a private address would
        # otherwise reach the private one when the public one does not answer.
        if not all(_is_ip(a) and is_public(ipaddress.ip_address(a)) for a in addresses):
            raise AddressRefused(NOT_PUBLIC)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, parts.netloc, path, tuple(addresses))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
