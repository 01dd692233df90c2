"""Static checks that metrics stay off the public site (issue 25): in compose, intake's metrics
port is set, differs from its site's port and is not published; deploy/prometheus/prometheus.yml
scrapes every Dear MP service on that port and is a valid Prometheus configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_intakes_metrics_port_is_its_own_and_not_published() -> None:
    intake = _compose()["services"]["intake"]
    env = _env(intake)
    metrics, site = int(env["DEARMP_METRICS_PORT"]), int(env["DEARMP_HTTP_PORT"])
    assert metrics > 0 and metrics != site
    published = {int(str(p).split("/")[0].rsplit(":", 1)[-1]) for p in intake.get("ports", [])}
    assert published == {site}, "only the site is published; metrics stay on the compose network"
    assert env["DEARMP_METRICS_HOST"] == "0.0.0.0", "reachable by a scraper on the network"


def test_prometheus_scrapes_every_dearmp_job_on_its_metrics_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    services = _compose()["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    wanted = set(re.findall(r"dearmp-(?:intake|relay|resolver|mailer|updates)", ALERTS.read_text()))
    assert wanted and wanted <= set(jobs), wanted - set(jobs)
    for name, job in jobs.items():
        for sd in job["dns_sd_configs"]:
            assert sd["type"] == "A"
            for host in sd["names"]:
                assert host in services, (name, host)
                assert int(_env(services[host])["DEARMP_METRICS_PORT"]) == sd["port"], (name, host)
                assert host.removesuffix("-2") == name.removeprefix("dearmp-"), (name, host)


def test_prometheus_config_is_valid() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
