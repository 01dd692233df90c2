"""A worker process: health, readiness and metrics on its own port; SIGTERM exits cleanly."""

from __future__ import annotations

import httpx

from tests.support import free_port, wait_http_ok, wait_until


def test_worker_serves_health_and_stops_cleanly_on_sigterm(system) -> None:
    port = free_port()
    mailer = system.services["mailer"]
    mailer.start({"DEARMP_METRICS_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{base}/healthz")
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert "dearmp_messages_total" in httpx.get(f"{base}/metrics", timeout=10).text
    wait_until(lambda: '"consuming"' in mailer.output(), 20, message="the mailer to consume")
    assert mailer.terminate(30) == 0
    assert "stopped consuming" in mailer.output() and "worker stopped" in mailer.output()


def test_readyz_reports_a_missing_database(system) -> None:
    port = free_port()
    mailer = system.services["mailer"]
    mailer.env = {**mailer.env, "DEARMP_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    mailer.start({"DEARMP_METRICS_PORT": str(port)})
    wait_http_ok(f"http://127.0.0.1:{port}/healthz")
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=20)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unavailable")
