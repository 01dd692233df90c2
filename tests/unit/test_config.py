from __future__ import annotations

import subprocess
import sys

import pytest

from shared.config import ConfigError, Settings, load_settings
from tests.support import ROOT


def test_defaults_are_sandbox_and_accept_plain_postgres_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEARMP_DATABASE_URL", "postgresql://u@h:5432/d")
    settings = load_settings()
    assert settings.delivery == "sandbox"
    assert settings.database_url == "postgresql+psycopg://u@h:5432/d"


def test_live_delivery_refuses_a_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEARMP_DELIVERY", "live")
    monkeypatch.setenv("DEARMP_MAIL_DOMAIN", "campaigns.example.org")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("DEARMP_SECRET_KEY", "a-real-and-long-secret-value")
    assert load_settings().delivery == "live"


@pytest.mark.parametrize(
    "base_url",
    ["https://campaigns.example.org", "http://192.168.1.20:8000", "http://[2001:db8::1]"],
)
def test_a_public_site_refuses_a_placeholder_secret(base_url: str) -> None:
    """Sandbox or not: with the placeholder anyone could forge confirm and unsubscribe links."""
    with pytest.raises(ValueError, match="SECRET_KEY.*public address"):
        Settings(base_url=base_url)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(base_url=base_url, secret_key="short")
    assert Settings(base_url=base_url, secret_key="a-real-and-long-secret-value").base_url


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]
)
def test_a_local_site_may_run_with_the_placeholder(base_url: str) -> None:
    assert Settings(base_url=base_url).secret_key == "change-me"


def test_live_delivery_needs_a_real_mail_domain() -> None:
    with pytest.raises(ValueError, match="MAIL_DOMAIN"):
        Settings(delivery="live", secret_key="a-real-and-long-secret-value")


def test_a_service_refuses_to_start_live_with_one_line() -> None:
    env = {"DEARMP_DELIVERY": "live", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "services.ops.cli", "serve", "mailer"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DEARMP_SECRET_KEY" in lines[0], result.stderr


def test_unknown_delivery_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEARMP_DELIVERY", "production")
    with pytest.raises(ConfigError, match="DEARMP_DELIVERY"):
        load_settings()


def test_the_readme_documents_every_setting_with_its_default() -> None:
    """Each setting has a row in the README's configuration table, and the default it shows is
    the one in shared/config.py (an operator sets what the table tells them)."""
    import re

    rows = dict(
        re.findall(
            r"^\| `(DEARMP_[A-Z0-9_]+)` \| `([^`]*)` \|", (ROOT / "README.md").read_text(), re.M
        )
    )
    for name, field in Settings.model_fields.items():
        variable = f"DEARMP_{name.upper()}"
        assert variable in rows, f"{variable} is missing from the README's configuration table"
        default = field.default
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        assert rows[variable] == str(default), (
            f"{variable}: README {rows[variable]!r}, code {default!r}"
        )


def test_rate_limits_count_an_ipv6_client_by_its_64() -> None:
    from services.intake.ratelimit import client_bucket, limit_key

    assert client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2:ffff::9")
    assert client_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket("::ffff:192.0.2.7") == "192.0.2.7" == client_bucket("192.0.2.7")
    assert client_bucket("unknown") == "unknown"
    assert limit_key("k", "ip", "2001:db8:1:2::1") == limit_key("k", "ip", "2001:db8:1:2::2")
    assert limit_key("k", "email", "a@b.org") != limit_key("k", "email", "c@b.org")


def test_workers_serve_health_on_this_machine_only_by_default() -> None:
    from shared.config import Settings
    from shared.health import serve_health

    assert Settings().metrics_host == "127.0.0.1"
    server = serve_health(0, {})
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
