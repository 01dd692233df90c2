"""Where a webhook may point (issue 25, "Webhook SSRF"), without I/O: an address that a resolver
or a URL parser would read as a private one is refused when it is added, whatever form it is
written in; when it is sent, the name is resolved once (here by a resolver the test gives) and
refused unless every address it gives is public."""

from __future__ import annotations

import ipaddress

import pytest

from shared import webhooks
from shared.webhooks import WebhookError, check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/",  # shorthand: inet_aton reads 127.0.0.1
        "https://127.0.1/",
        "https://0x7f.0.0.1/",  # hex
        "https://0x7f.1/",
        "https://0177.0.0.1/",  # octal
        "https://127.000.000.001/",
        "https://2130706433/",  # one number
        "https://0x7f000001/",
        "https://10.0.0.1.:8443/",  # a trailing dot
        "https://localhost./",
        "https://crm.example.org./",
        "https://foo.localhost/",  # special-use names
        "https://printer.local/",
        "https://db.internal/",
        "https://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "https://[::ffff:7f00:1]/",
        "https://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1: is_global says True
        "https://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1: is_global says True
        "https://[fe80::1%25eth0]/",  # an interface's zone
        "https://224.0.0.1/",  # multicast: is_global says True
        "https://[2606:4700:0:0::1111]/",  # public, but not as ipaddress writes it
        "https://%31%32%37.0.0.1/",
        "https://ｅｖｉｌ．ｃｏｍ/",  # full-width letters and dot (NFKC: evil.com)
        "https://crm.example.org:0443/",
    ],
)
def test_private_or_non_canonical_hosts_are_refused_when_added(url: str) -> None:
    with pytest.raises(WebhookError) as caught:
        check_url(url, allow_http_localhost=True)  # the tests' escape hatch opens nothing here
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "url, stored",
    [
        ("https://crm.example.org/hooks?x=1", "https://crm.example.org/hooks?x=1"),
        ("https://CRM.Example.ORG:8443/h", "https://crm.example.org:8443/h"),  # case is not form
        (
            "https://203.0.113.7.nip.io/h",
            "https://203.0.113.7.nip.io/h",
        ),  # a name: checked when sent
        ("https://8.8.8.8/hook", "https://8.8.8.8/hook"),
        ("https://[2606:4700::1111]/hook", "https://[2606:4700::1111]/hook"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),  # only with the hatch
    ],
)
def test_canonical_public_hosts_are_accepted(url: str, stored: str) -> None:
    assert check_url(url, allow_http_localhost=True) == stored


@pytest.mark.parametrize(
    "address, public",
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 around a public address
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:a00:1::", False),
        ("ff02::1", False),
        ("239.1.2.3", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert webhooks.is_public(ipaddress.ip_address(address)) is public


def resolver(answers: dict[str, list[str]], asked: list[str]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise OSError("no such name")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["::1"],
        ["10.0.0.7"],
        ["169.254.169.254"],
        ["203.0.113.7", "10.0.0.7"],  # one public, one not: the whole name is refused
        ["::ffff:127.0.0.1"],
        ["not-an-address"],
    ],
)
def test_a_name_that_resolves_to_a_private_address_is_refused_when_sent(
    addresses: list[str],
) -> None:
    asked: list[str] = []
    resolve = resolver({"crm.example.org": addresses}, asked)
    with pytest.raises(webhooks.AddressRefused) as caught:
        webhooks.target_of("https://crm.example.org/hook", resolve=resolve)
    assert str(caught.value) == webhooks.NOT_PUBLIC and asked == ["crm.example.org"]


def test_a_public_name_is_resolved_once_and_its_addresses_are_the_target() -> None:
    asked: list[str] = []
    resolve = resolver({"crm.example.org": ["8.8.8.8", "2606:4700::1111"]}, asked)
    target = webhooks.target_of("https://crm.example.org:8443/hooks/in?k=v", resolve=resolve)
    assert asked == ["crm.example.org"]
    assert target.addresses == ("8.8.8.8", "2606:4700::1111")
    assert (target.scheme, target.host, target.port) == ("https", "crm.example.org", 8443)
    assert (target.host_header, target.path) == ("crm.example.org:8443", "/hooks/in?k=v")
    literal = webhooks.target_of("https://8.8.4.4/h", resolve=resolver({}, asked))
    assert literal.addresses == ("8.8.4.4",) and asked == ["crm.example.org"]  # no look-up


def test_what_a_send_refuses_without_connecting() -> None:
    nothing = resolver({}, [])
    with pytest.raises(webhooks.Unresolvable, match="could not resolve the host"):
        webhooks.target_of("https://nowhere.example.org/h", resolve=nothing)
    # A row stored before these rules is checked again when it is sent.
    for stored in ("https://127.1/h", "https://localhost./h", "http://crm.example.org/h"):
        with pytest.raises(webhooks.AddressRefused, match="^refused: "):
            webhooks.target_of(stored, resolve=nothing)
    # The escape hatch: http://127.0.0.1 only, never resolved, and only when allowed.
    local = webhooks.target_of("http://127.0.0.1:9/h", allow_http_localhost=True, resolve=nothing)
    assert local.addresses == ("127.0.0.1",) and local.host_header == "127.0.0.1:9"
    with pytest.raises(webhooks.AddressRefused):
        webhooks.target_of("http://127.0.0.1:9/h", resolve=nothing)
    with pytest.raises(webhooks.AddressRefused):
        webhooks.target_of("http://localhost:9/h", allow_http_localhost=True, resolve=nothing)
