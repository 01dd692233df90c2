"""PostgreSQL and RabbitMQ on this machine, for ``make run``: started when installed but stopped.

``make run`` needs both. When one is not answering on a local address, it is started the way
``.ci/run`` starts it (``pg_ctlcluster … main start``, ``rabbitmq-server -detached``): directly as
root, else through ``sudo -n`` (never a password prompt: without passwordless sudo the command to
run is printed instead). When it is not installed, the one package to install is named. A server
on another host, or on a port other than the server's own (5432, 5672), is never started: it is
only reported.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
POSTGRES_CONFIG = Path("/etc/postgresql")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def postgres_start() -> list[str]:
    """``pg_ctlcluster`` for the first installed cluster version (Debian's layout)."""
    versions = sorted(p.name for p in POSTGRES_CONFIG.iterdir()) if POSTGRES_CONFIG.is_dir() else []
    version = versions[0] if versions else "15"
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]


@dataclass(frozen=True)
class LocalServer:
    name: str
    variable: str  # the setting that points at it
    command: str  # must be on PATH for the server to count as installed
    package: str  # Debian's package
    port: int  # where the local server listens unless configured otherwise
    start: Callable[[], list[str]]
    ready: Sequence[str] = ()  # a command that returns once the server has started


POSTGRES = LocalServer(
    "PostgreSQL", "DEARMP_DATABASE_URL", "pg_ctlcluster", "postgresql", 5432, postgres_start
)
RABBITMQ = LocalServer(
    "RabbitMQ",
    "DEARMP_AMQP_URL",
    "rabbitmq-server",
    "rabbitmq-server",
    5672,
    lambda: ["rabbitmq-server", "-detached"],
    ready=("rabbitmqctl", "-q", "await_startup"),
)


@dataclass
class System:
    """What ``ensure_running`` asks of the machine (tests give a fake one)."""

    reachable: Callable[[str, int], bool] = reachable
    which: Callable[[str], str | None] = shutil.which
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    is_root: bool = os.geteuid() == 0
    sleep: Callable[[float], None] = time.sleep
    wait_seconds: float = 60.0


def _privileged(command: list[str], system: System) -> list[str] | None:
    """The command as it can run without a password prompt, or None if it cannot."""
    if system.is_root:
        return command
    if system.which("sudo") is None:
        return None
    probe = system.run(["sudo", "-n", "true"], capture_output=True, text=True, timeout=10)
    return ["sudo", "-n", *command] if probe.returncode == 0 else None


def ensure_running(
    server: LocalServer, host: str, port: int, say: Callable[[str], None], system: System
) -> str | None:
    """None once ``server`` answers on ``host:port`` (started here if it was stopped); else one
    line saying what is wrong and what to do."""
    if system.reachable(host, port):
        return None
    if host not in LOCAL_HOSTS or port != server.port:
        # Another machine's server, or a port the local one does not listen on: starting the
        # local server would not make this address answer.
        return f"{server.name} is not reachable at {host}:{port} (check {server.variable})"
    if system.which(server.command) is None:
        return (
            f"{server.name} is not installed: install it with "
            f"'sudo apt-get install {server.package}' (or point {server.variable} at a server)"
        )
    start = server.start()
    command = _privileged(start, system)
    if command is None:
        return (
            f"{server.name} is installed but stopped, and starting it needs a password: "
            f"run 'sudo {' '.join(start)}', then make run again"
        )
    say(f"{server.name} is not running; starting it: {' '.join(command)}")
    try:
        done = system.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not start {server.name} ({' '.join(command)}): {exc}"
    if done.returncode != 0:
        last = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or ["no output"]
        return f"could not start {server.name} ({' '.join(command)}): {last[0][:200]}"
    if server.ready:
        ready = _privileged(list(server.ready), system) or list(server.ready)
        system.run(ready, capture_output=True, text=True, timeout=system.wait_seconds)
    deadline = time.monotonic() + system.wait_seconds
    while not system.reachable(host, port):
        if time.monotonic() > deadline:
            return f"started {server.name}, but nothing answers on {host}:{port} yet"
        system.sleep(0.5)
    say(f"{server.name} started")
    return None
