"""Client addresses behind a proxy, against a real ``dearmp serve intake`` (uvicorn) with real
Postgres and RabbitMQ (issue 25): a client cannot pick its own address by writing
X-Forwarded-For, so per-address limits hold; ``*`` is refused at start-up."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServiceProcess, free_port, make_signature, wait_http_ok

SIGN = "/api/v1/campaigns/guardians-for-children/signatures"
LIMIT = 3  # signatures per address in the window, for these tests


@pytest.fixture
def intakes(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[list]:  # type: ignore[type-arg]
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.terminate(20)
        if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
            print(process.output()[-4000:])


def start_intake(
    service_env: dict[str, str], intakes: list[ServiceProcess], proxies: str
) -> tuple[ServiceProcess, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **service_env,
        "DEARMP_HTTP_PORT": str(port),
        "DEARMP_BASE_URL": base,
        "DEARMP_FORWARDED_ALLOW_IPS": proxies,
        "DEARMP_RATE_LIMIT_IP": f"{LIMIT}/600",
    }
    process = ServiceProcess("intake", env, tag="forwarded").start()
    intakes.append(process)
    return process, base


def sign_as(base: str, forwarded_for: str) -> int:
    """One signature (its own email) through a proxy that sent ``forwarded_for``."""
    headers = {"X-Forwarded-For": forwarded_for}
    return httpx.post(
        f"{base}{SIGN}", json=make_signature(), headers=headers, timeout=10
    ).status_code


def test_a_star_is_refused_at_start_up_with_one_line(service_env, intakes) -> None:
    process, _ = start_intake(service_env, intakes, "*")
    assert process.wait_exit(30) != 0
    said = [line for line in process.output().splitlines() if "FORWARDED_ALLOW_IPS" in line]
    assert len(said) == 1, process.output()[-2000:]
    assert "list your proxies' addresses or networks" in said[0]


def test_forged_entries_before_the_proxys_own_do_not_escape_the_limit(service_env, intakes) -> None:
    """The balancer (127.0.0.1, listed as a network) appends the address it saw; whatever the
    client wrote before it changes nothing. Two real clients are still counted apart."""
    _, base = start_intake(service_env, intakes, "127.0.0.0/8")
    wait_http_ok(f"{base}/healthz")
    answers = [sign_as(base, f"198.51.100.{i}, 203.0.113.7") for i in range(LIMIT + 2)]
    assert answers == [202] * LIMIT + [429, 429]
    assert sign_as(base, "198.51.100.99, 203.0.113.8") == 202  # another real client
    # Behind two of our proxies (the second listed by network), the client is the address the
    # first one saw.
    answers = [sign_as(base, f"198.51.100.{i}, 203.0.113.9, 127.0.0.5") for i in range(LIMIT + 1)]
    assert answers == [202] * LIMIT + [429]


def test_the_header_counts_only_from_a_listed_proxy(service_env, intakes) -> None:
    """Intake reached directly (its peer, 127.0.0.1, is not the listed proxy): the header is
    ignored, so writing a new address each time does not make a new client."""
    _, base = start_intake(service_env, intakes, "10.0.0.1")
    wait_http_ok(f"{base}/healthz")
    answers = [sign_as(base, f"203.0.113.{i}") for i in range(LIMIT + 1)]
    assert answers == [202] * LIMIT + [429]
