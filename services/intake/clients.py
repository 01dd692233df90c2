"""Who is asking: the client's address, the one rule every per-address limit counts by.

Behind a load balancer every connection comes from the balancer, which appends the address it
saw to ``X-Forwarded-For``. Whatever the client itself wrote there comes first and proves
nothing. So the client is the rightmost address in the header that is not one of our trusted
proxies (``DEARMP_FORWARDED_ALLOW_IPS``, addresses or networks: ``shared.config.proxy_networks``),
walking from the right past our own proxies; and the header counts at all only when the
connection itself comes from a trusted proxy. ``client_address`` is that rule;
``ForwardedClient`` applies it to every request (the scope's ``client``, and the scheme from
``X-Forwarded-Proto``), so ``request.client.host`` (``deps.client_ip``) is the client's address
everywhere. Uvicorn's own proxy-header handling is off (``serve.py``): one rule, here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_HOPS = 32  # entries looked at, from the right: a longer header is someone's invention


def parse_hop(hop: str) -> Address | None:
    """One ``X-Forwarded-For`` entry as an address ("1.2.3.4", "1.2.3.4:80", "2001:db8::1",
    "[2001:db8::1]:443"), None if it is not one."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1 : hop.find("]")] if "]" in hop else ""
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return any(address in net or (mapped is not None and mapped in net) for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The client's address: ``peer`` (the connection's) unless it is a trusted proxy; then the
    rightmost ``forwarded_for`` address that is not a trusted proxy. An entry there that is no
    address (or a header of trusted proxies only) ends the walk at the last address known."""
    known = parse_hop(peer) if peer else None
    if known is None:
        return peer or "unknown"
    if not _trusted(known, proxies):
        return str(known)
    hops = [hop for value in forwarded_for for hop in value.split(",")][-MAX_HOPS:]
    for hop in reversed(hops):
        address = parse_hop(hop)
        if address is None:
            break  # unreadable: who sent it to the proxy is unknown; count the proxy
        known = address
        if not _trusted(address, proxies):
            break
    return str(known)


class ForwardedClient:
    """Set each request's client (and, from a trusted proxy, its scheme) by ``client_address``.
    A plain ASGI middleware, like the app's others."""

    def __init__(self, app: ASGIApp, proxies: Sequence[Network]) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = (scope.get("client") or (None, 0))[0]
            address = parse_hop(peer) if peer else None
            if address is not None and _trusted(address, self.proxies):
                headers = scope.get("headers") or []
                forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
                protos = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto"]
                proto = protos[-1].split(",")[-1].strip() if protos else ""
                scope = dict(scope)
                scope["client"] = (client_address(peer, forwarded, self.proxies), 0)
                if proto in ("http", "https"):
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
