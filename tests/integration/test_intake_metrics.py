"""Intake's metrics on their own port (issue 25): ``/metrics`` is not on the public site; the
metrics port serves it with ``/healthz`` and ``/readyz``, as every worker does. Against a real
``dearmp serve intake`` with real Postgres and RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServiceProcess, free_port, make_signature, wait_http_ok, wait_until

SIGN = "/api/v1/campaigns/guardians-for-children/signatures"


@pytest.fixture
def intake(service_env: dict[str, str]) -> Iterator[tuple[ServiceProcess, str, str]]:
    site, metrics = free_port(), free_port()
    env = {
        **service_env,
        "DEARMP_HTTP_PORT": str(site),
        "DEARMP_BASE_URL": f"http://127.0.0.1:{site}",
        "DEARMP_METRICS_PORT": str(metrics),
    }
    process = ServiceProcess("intake", env, tag="metrics").start()
    yield process, f"http://127.0.0.1:{site}", f"http://127.0.0.1:{metrics}"
    process.terminate(20)


def test_metrics_answer_on_the_metrics_port_only(intake) -> None:
    _, site, metrics = intake
    wait_http_ok(f"{site}/healthz")
    public = httpx.get(f"{site}/metrics", timeout=10)
    assert public.status_code == 404
    assert "dearmp_" not in public.text
    wait_http_ok(f"{metrics}/healthz")
    assert httpx.post(f"{site}{SIGN}", json=make_signature(), timeout=10).status_code == 202
    # The web app's own counters and the journey consumer's, in one process by default.
    wait_until(
        lambda: (
            'dearmp_signatures_total{campaign="guardians-for-children"} 1.0'
            in httpx.get(f"{metrics}/metrics", timeout=10).text
        ),
        15,
        0.2,
        "the signature to be counted on the metrics port",
    )
    ready = httpx.get(f"{metrics}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_the_metrics_port_cannot_be_the_public_port(service_env) -> None:
    port = free_port()
    env = {**service_env, "DEARMP_HTTP_PORT": str(port), "DEARMP_METRICS_PORT": str(port)}
    process = ServiceProcess("intake", env, tag="metrics-same").start()
    try:
        assert process.wait_exit(30) == 2
        said = [line for line in process.output().splitlines() if "DEARMP_METRICS_PORT" in line]
        assert len(said) == 1 and "must differ from DEARMP_HTTP_PORT" in said[0], said
    finally:
        process.terminate(5)
