"""The client's address behind proxies (issue 25): the rightmost X-Forwarded-For address that is
not a trusted proxy, believed only from a trusted peer; one rule (services/intake/clients.py)."""

from __future__ import annotations

import re

import pytest

from services.intake.clients import client_address
from shared.config import ConfigError, Settings, load_settings, proxy_networks
from tests.support import ROOT

PROXIES = proxy_networks("127.0.0.1, 10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # A client's own entries come first: the proxy appends the address it saw.
        ("127.0.0.1", ["6.6.6.6, 203.0.113.7"], "203.0.113.7"),
        ("127.0.0.1", ["6.6.6.6", "203.0.113.7"], "203.0.113.7"),  # two header lines
        # Walking from the right past our own proxies (listed by address or network).
        ("127.0.0.1", ["6.6.6.6, 203.0.113.7, 10.1.2.3, 10.9.9.9"], "203.0.113.7"),
        ("127.0.0.1", ["6.6.6.6, 2001:db8::7, fd00::1"], "2001:db8::7"),
        ("127.0.0.1", ["[2001:db8::7]:4431"], "2001:db8::7"),
        ("127.0.0.1", ["203.0.113.7:5678"], "203.0.113.7"),
        # From a peer that is not a trusted proxy, the header counts for nothing.
        ("198.51.100.4", ["6.6.6.6"], "198.51.100.4"),
        ("198.51.100.4", [], "198.51.100.4"),
        # A trusted peer with no header, or a header of trusted proxies only.
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["10.1.2.3, 10.4.5.6"], "10.1.2.3"),
        # An entry that is no address: the walk stops at the last address known.
        ("127.0.0.1", ["6.6.6.6, unknown, 10.1.2.3"], "10.1.2.3"),
        ("127.0.0.1", ["<script>"], "127.0.0.1"),
        ("127.0.0.1", [""], "127.0.0.1"),
        # A peer that is not an IP address at all (a unix socket, a test client).
        ("testclient", ["6.6.6.6"], "testclient"),
        (None, ["6.6.6.6"], "unknown"),
        # IPv4-mapped IPv6 peers are the IPv4 proxy they are.
        ("::ffff:127.0.0.1", ["6.6.6.6, 203.0.113.7"], "203.0.113.7"),
    ],
)
def test_the_client_is_the_rightmost_address_that_is_not_our_proxy(
    peer: str | None, forwarded: list[str], expected: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_a_client_cannot_choose_its_address_however_long_its_header() -> None:
    forged = ", ".join(f"6.6.{i // 250}.{i % 250}" for i in range(500))
    assert client_address("127.0.0.1", [f"{forged}, 203.0.113.7"], PROXIES) == "203.0.113.7"


@pytest.mark.parametrize("value", ["*", "127.0.0.1,*", "10.0.0.0/8, *"])
def test_a_star_is_refused_with_one_line(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEARMP_FORWARDED_ALLOW_IPS", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("DEARMP_FORWARDED_ALLOW_IPS: ") and "\n" not in message
    assert "list your proxies' addresses or networks" in message


@pytest.mark.parametrize("value", ["nonsense", "10.0.0.0/33", "10.0.0.1 10.0.0.2"])
def test_an_entry_that_is_no_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address or network"):
        Settings(forwarded_allow_ips=value)


def test_proxies_are_listed_by_address_or_network() -> None:
    assert Settings(forwarded_allow_ips="").trusted_proxies == ()
    assert [
        str(n) for n in Settings(forwarded_allow_ips="10.0.1.5, 10.0.2.0/24").trusted_proxies
    ] == [
        "10.0.1.5/32",
        "10.0.2.0/24",
    ]


def test_only_the_one_rule_reads_the_connections_address() -> None:
    """Every per-address limit counts by ``deps.client_ip``: no other module of intake reads
    the connection's address, or X-Forwarded-For, itself."""
    allowed = {"services/intake/clients.py", "services/intake/deps.py"}
    pattern = re.compile(r"request\.client\b|\[\"client\"\]|[\"']x-forwarded-for[\"']", re.I)
    readers = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "services").rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    }
    assert readers <= allowed, readers - allowed
