"""Shared fixtures: real RabbitMQ and Postgres, isolated per test.

RabbitMQ and Postgres come from DEARMP_TEST_AMQP_URL / DEARMP_TEST_DATABASE_URL when set;
otherwise from the local servers `make run` uses (127.0.0.1:5672 and :5432, default credentials)
when they answer; otherwise from testcontainers. With none of these, integration tests fail under
CI=true and skip (with the reason) elsewhere. Under CI=true no test may skip at all (a skip is
reported as a failure); elsewhere the run ends with one line per cause of skips. Each test gets its
own database (a copy of a migrated template) and its own broker namespace (unique exchange and
queue names), removed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.config import Settings
from tests.support import ServiceProcess, free_port, wait_http_ok, wait_until

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RETRY_DELAYS = "200,400,800"
# Every retry delay any test configures, so the namespace clean-up finds all the delay queues.
ALL_TEST_DELAYS = [200, 400, 800, 2000, 4000]


def _unavailable(what: str, why: str) -> None:
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _containers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


# The servers `make run` uses (shared/config.py's defaults), tried when DEARMP_TEST_* are unset.
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _amqp_answers(url: str) -> str | None:
    """None if RabbitMQ at ``url`` takes a connection, else why not."""
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = 5
    try:
        pika.BlockingConnection(params).close()
    except Exception as exc:
        return type(exc).__name__
    return None


def _postgres_answers(url: str) -> str | None:
    """None if PostgreSQL at ``url`` answers a query, else why not."""
    engine = sa.create_engine(Settings(database_url=url).database_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return type(exc).__name__
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def amqp_url(_containers: ExitStack) -> str:
    """DEARMP_TEST_AMQP_URL; else the local RabbitMQ `make run` uses; else a container."""
    url = os.environ.get("DEARMP_TEST_AMQP_URL")
    if url:
        why = _amqp_answers(url)
        if why:
            _unavailable("RabbitMQ", f"cannot connect to DEARMP_TEST_AMQP_URL ({why})")
        return url
    local = _amqp_answers(LOCAL_AMQP_URL)
    if local is None:
        return LOCAL_AMQP_URL
    try:
        from testcontainers.rabbitmq import RabbitMqContainer

        container = _containers.enter_context(RabbitMqContainer("rabbitmq:3.13-management"))
        return f"amqp://guest:guest@{container.get_container_host_ip()}:{container.get_exposed_port(5672)}/%2F"
    except Exception as exc:
        _unavailable(
            "RabbitMQ",
            f"not on 127.0.0.1:5672 ({local}; start it with 'rabbitmq-server -detached' or set "
            f"DEARMP_TEST_AMQP_URL) and testcontainers failed ({type(exc).__name__})",
        )
        raise


@pytest.fixture(scope="session")
def pg_server_url(_containers: ExitStack) -> str:
    """DEARMP_TEST_DATABASE_URL; else the local PostgreSQL `make run` uses; else a container."""
    url = os.environ.get("DEARMP_TEST_DATABASE_URL")
    if url:
        why = _postgres_answers(url)
        if why:
            _unavailable("PostgreSQL", f"cannot connect to DEARMP_TEST_DATABASE_URL ({why})")
    elif (local := _postgres_answers(LOCAL_DATABASE_URL)) is None:
        url = LOCAL_DATABASE_URL
    else:
        try:
            from testcontainers.postgres import PostgresContainer

            container = _containers.enter_context(
                PostgresContainer("postgres:16", driver="psycopg")
            )
            url = container.get_connection_url()
        except Exception as exc:
            _unavailable(
                "PostgreSQL",
                f"not on 127.0.0.1:5432 ({local}; start it with 'pg_ctlcluster "
                "--skip-systemctl-redirect $(ls /etc/postgresql) main start' or set "
                f"DEARMP_TEST_DATABASE_URL) and testcontainers failed ({type(exc).__name__})",
            )
    return Settings(database_url=url).database_url  # normalises the driver name


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """A migrated database with the demo data, copied for each test."""
    from services.ops.devrun import load_demo
    from shared.db import upgrade

    name = f"dearmp_tpl_{uuid.uuid4().hex[:8]}"
    admin = _admin(pg_server_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    load_demo(url)
    admin.dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def database_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    name = f"dearmp_t_{uuid.uuid4().hex[:12]}"
    admin = _admin(pg_server_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    admin.dispose()  # a fault test may have restarted Postgres: connect afresh
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    from shared.db import make_engine

    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def namespace(amqp_url: str) -> Iterator[str]:
    from shared.broker.declare import delete_all
    from shared.topology import Topology

    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    try:
        delete_all(amqp_url, Topology(ns), ALL_TEST_DELAYS)
    except Exception:
        pass  # a fault test may leave the broker briefly unavailable; names are unique anyway


@pytest.fixture
def mail() -> Iterator[object]:
    from shared.mailcatcher import MailCatcher

    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def service_env(database_url: str, amqp_url: str, namespace: str, mail: object) -> dict[str, str]:
    return {
        "DEARMP_DATABASE_URL": database_url,
        "DEARMP_AMQP_URL": amqp_url,
        "DEARMP_BROKER_NAMESPACE": namespace,
        "DEARMP_SMTP_URL": mail.url,  # type: ignore[attr-defined]
        "DEARMP_SECRET_KEY": "test-secret-key-0123456789",
        "DEARMP_RETRY_DELAYS_MS": RETRY_DELAYS,
        "DEARMP_MAX_ATTEMPTS": "3",
        "DEARMP_HEARTBEAT": "10",
        "DEARMP_SANDBOX_TO": "sandbox@example.org",
        "DEARMP_METRICS_PORT": "0",
        "DEARMP_LOG_LEVEL": "info",
        # Many test signatures come from 127.0.0.1; rate limits have their own tests.
        "DEARMP_RATE_LIMIT_IP": "100000/60",
        "DEARMP_RATE_LIMIT_EMAIL": "100000/60",
        # Short sending leases and pauses, so a test sees them end (the defaults: 60 s, 30 s).
        "DEARMP_SEND_LEASE_SECONDS": "6",
        "DEARMP_SMTP_PAUSE_SECONDS": "1",
        "DEARMP_SMTP_PAUSE_MAX_SECONDS": "4",
    }


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("DEARMP_").lower(): v for k, v in service_env.items()})


class System:
    """The whole of Dear MP as subprocesses: intake, relay, resolver, mailer, updates."""

    NAMES = ("relay", "resolver", "mailer", "updates", "intake")

    def __init__(self, env: dict[str, str], request: pytest.FixtureRequest):
        # Every process its own port, chosen here: a worker's metrics server on an ephemeral
        # port could otherwise take the one chosen for intake (and answer its /healthz). Intake
        # has two: its site (the last) and its metrics port, apart from the site.
        ports: list[int] = []
        while len(ports) < len(self.NAMES) + 1:
            if (port := free_port()) not in ports:
                ports.append(port)
        self.base_url = f"http://127.0.0.1:{ports[-1]}"
        self.env = {**env, "DEARMP_HTTP_PORT": str(ports[-1]), "DEARMP_BASE_URL": self.base_url}
        tag = request.node.name[:40].replace("/", "_")
        self.metrics_ports = dict(zip(self.NAMES, ports, strict=False))
        self.services = {
            name: ServiceProcess(name, {**self.env, "DEARMP_METRICS_PORT": str(port)}, tag=tag)
            for name, port in self.metrics_ports.items()
        }

    def start(self, *names: str) -> System:
        for name in names or self.services:
            self.services[name].start()
        if not names or "intake" in names:
            wait_http_ok(f"{self.base_url}/healthz", 30)
        return self

    def stop(self) -> None:
        for svc in self.services.values():
            svc.terminate(20)

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{s.output()[-4000:]}" for n, s in self.services.items())


@pytest.fixture
def system(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[System]:
    sys_ = System(service_env, request)
    yield sys_
    sys_.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(sys_.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if IN_CI and rep.skipped and not hasattr(rep, "wasxfail"):
        # CI runs everything: a test that would skip (a missing server, browser or tool) fails.
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped under CI=true, which runs every test: {reason}"
    setattr(item, f"rep_{rep.when}", rep)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """One line per cause of skips, with how many tests it skipped."""
    causes: dict[str, int] = {}
    for rep in terminalreporter.stats.get("skipped", []):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        reason = reason.removeprefix("Skipped: ")
        causes[reason] = causes.get(reason, 0) + 1
    if not causes:
        return
    terminalreporter.write_sep("-", "skipped, by cause")
    for reason, n in sorted(causes.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{n:>4} skipped: {reason}")


__all__ = ["wait_until", "Path"]
