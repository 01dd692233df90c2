"""``make run``: the whole of Dear MP on this machine, without Docker.

Starts PostgreSQL and RabbitMQ if they are installed here but stopped (local_servers.py), migrates,
loads the demo campaigns and reference data, starts a local mail catcher (messages
stored under var/mail/), the relay and every service as child processes, and prints the URL to
open. Ctrl-C stops everything cleanly. Honours DEARMP_* variables already set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa

from services.ops.local_servers import POSTGRES, RABBITMQ, System, ensure_running, reachable
from shared.broker.declare import broker_nodes
from shared.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("relay", "resolver", "mailer", "updates", "intake")


def say(message: str) -> None:
    print(f"dearmp: {message}", flush=True)


def check_dependencies(settings: Settings, system: System | None = None) -> str | None:
    """Start PostgreSQL and RabbitMQ if they are installed here but stopped; None when both
    answer, else one line saying what to do."""
    system = system or System()
    db = sa.make_url(settings.database_url)
    amqp = urlparse(broker_nodes(settings.amqp_url)[0])  # a cluster: its first node
    for server, host, port in (
        (POSTGRES, db.host or "127.0.0.1", db.port or 5432),
        (RABBITMQ, amqp.hostname or "127.0.0.1", amqp.port or 5672),
    ):
        problem = ensure_running(server, host, port, say, system)
        if problem:
            return problem
    return None


def load_demo(database_url: str) -> None:
    """Load the example campaigns and the demo reference data (data/demo/) into a migrated
    database: what `make run` shows, and what the tests start from."""
    from services.resolver import importers
    from shared.campaigns import campaign_files, read_campaign_file, save_campaign
    from shared.db import make_engine

    engine = make_engine(database_url)
    demo = ROOT / "data" / "demo"
    importers.import_onspd(engine, demo / "onspd.csv", quiet=True)
    importers.import_constituencies(engine, demo / "constituencies.json", quiet=True)
    importers.import_mps(engine, demo / "mps.csv", quiet=True)
    with engine.begin() as conn:
        for path in campaign_files(ROOT / "campaigns"):
            save_campaign(conn, read_campaign_file(path))
    engine.dispose()


def prepare(settings: Settings) -> None:
    from shared.db import ensure_database, upgrade

    if ensure_database(settings.database_url):
        say("created the database")
    upgrade(settings.database_url)
    load_demo(settings.database_url)
    say("database migrated; demo campaigns and reference data loaded")


def wait_healthy(url: str, timeout: float = 30) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        say(f"configuration: {exc}")
        return 2
    problem = check_dependencies(settings)
    if problem:
        say(problem)
        return 1
    prepare(settings)

    from shared.mailcatcher import MailCatcher

    smtp = urlparse(settings.smtp_url)
    smtp_host, smtp_port = smtp.hostname or "127.0.0.1", smtp.port or 1025
    catcher = None
    if smtp_host in ("127.0.0.1", "localhost"):
        if reachable(smtp_host, smtp_port):
            say(
                f"port {smtp_port} is taken; set DEARMP_SMTP_URL to a free port, e.g. smtp://127.0.0.1:2525"
            )
            return 1
        catcher = MailCatcher(smtp_host, smtp_port, ROOT / "var" / "mail").start()
        say(f"mail catcher on {settings.smtp_url}; messages are stored in var/mail/")

    logs = ROOT / "var" / "log"
    logs.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen[bytes]] = {}
    base_port = settings.metrics_port
    for i, name in enumerate(SERVICES):
        env = {**os.environ, "DEARMP_METRICS_PORT": str(base_port + i), "PYTHONUNBUFFERED": "1"}
        log = (logs / f"{name}.log").open("ab")
        children[name] = subprocess.Popen(
            [sys.executable, "-m", "services.ops.cli", "serve", name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    local = f"http://127.0.0.1:{settings.http_port}"
    if wait_healthy(f"{local}/healthz"):
        say(f"Dear MP is running. Open {local}/c/guardians-for-children")
        say(
            f"service logs are in var/log/; /metrics on ports {base_port}-{base_port + 4} "
            f"(intake's on {base_port + 4}). "
            "Press Ctrl-C to stop."
        )
    else:
        say("intake did not start; see var/log/intake.log")
        stop.set()

    exit_code = 0
    while not stop.wait(1.0):
        dead = [n for n, p in children.items() if p.poll() is not None]
        if dead:
            say(f"{', '.join(dead)} stopped unexpectedly; see var/log/. Stopping everything.")
            exit_code = 1
            break

    say("stopping…")
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in children.items():
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in time; killing it")
            proc.kill()
    if catcher:
        catcher.stop()
    say("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
