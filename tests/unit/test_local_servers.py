"""``make run`` starts PostgreSQL and RabbitMQ when they are installed but stopped, never asks for
a password, and names the package when one is not installed (services/ops/local_servers.py).

A fake machine stands in for the real one (tests/e2e/test_make_run.py runs the real thing).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from services.ops.local_servers import POSTGRES, RABBITMQ, System, ensure_running


@dataclass
class Machine:
    """Installed commands, which servers answer, whether sudo works without a password, and
    what was run. Running a server's start command makes it answer."""

    installed: set[str] = field(default_factory=set)
    up: set[int] = field(default_factory=set)
    passwordless_sudo: bool = False
    start_fails: bool = False
    ran: list[list[str]] = field(default_factory=list)

    def system(self, *, root: bool) -> System:
        return System(
            reachable=lambda _host, port: port in self.up,
            which=lambda cmd: f"/usr/bin/{cmd}" if cmd in self.installed else None,
            run=self.run,
            is_root=root,
            sleep=lambda _s: None,
            wait_seconds=1,
        )

    def run(self, command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        self.ran.append(command)
        if command == ["sudo", "-n", "true"]:
            return subprocess.CompletedProcess(command, 0 if self.passwordless_sudo else 1, "", "")
        if self.start_fails:
            return subprocess.CompletedProcess(command, 1, "", "Error: could not bind\n")
        if "pg_ctlcluster" in command:
            self.up.add(5432)
        if "rabbitmq-server" in command:
            self.up.add(5672)
        return subprocess.CompletedProcess(command, 0, "", "")


def test_a_running_server_is_left_alone() -> None:
    machine = Machine(installed={"pg_ctlcluster"}, up={5432})
    assert ensure_running(POSTGRES, "127.0.0.1", 5432, print, machine.system(root=True)) is None
    assert machine.ran == []


def test_a_stopped_server_is_started_as_root_and_waited_for() -> None:
    machine = Machine(installed={"pg_ctlcluster", "rabbitmq-server", "rabbitmqctl"})
    said: list[str] = []
    system = machine.system(root=True)
    assert ensure_running(POSTGRES, "127.0.0.1", 5432, said.append, system) is None
    assert ensure_running(RABBITMQ, "127.0.0.1", 5672, said.append, system) is None
    assert machine.ran[0][:2] == ["pg_ctlcluster", "--skip-systemctl-redirect"]
    assert machine.ran[0][-2:] == ["main", "start"]
    assert machine.ran[1] == ["rabbitmq-server", "-detached"]
    assert machine.ran[2] == ["rabbitmqctl", "-q", "await_startup"]
    assert said[-1] == "RabbitMQ started"


def test_without_root_it_uses_passwordless_sudo_or_says_what_to_run() -> None:
    machine = Machine(installed={"rabbitmq-server", "sudo"}, passwordless_sudo=True)
    assert ensure_running(RABBITMQ, "localhost", 5672, print, machine.system(root=False)) is None
    assert ["sudo", "-n", "rabbitmq-server", "-detached"] in machine.ran

    machine = Machine(installed={"rabbitmq-server", "sudo"}, passwordless_sudo=False)
    problem = ensure_running(RABBITMQ, "localhost", 5672, print, machine.system(root=False))
    assert problem == (
        "RabbitMQ is installed but stopped, and starting it needs a password: "
        "run 'sudo rabbitmq-server -detached', then make run again"
    )
    assert machine.ran == [["sudo", "-n", "true"]]  # -n: sudo never prompts


def test_a_missing_server_names_its_package_in_one_line() -> None:
    machine = Machine()
    problem = ensure_running(POSTGRES, "127.0.0.1", 5432, print, machine.system(root=True))
    assert problem is not None and "\n" not in problem
    assert "sudo apt-get install postgresql" in problem
    problem = ensure_running(RABBITMQ, "127.0.0.1", 5672, print, machine.system(root=True))
    assert problem is not None and "sudo apt-get install rabbitmq-server" in problem
    assert machine.ran == []


def test_a_remote_server_is_never_started_and_a_failed_start_says_why() -> None:
    machine = Machine(installed={"pg_ctlcluster"})
    problem = ensure_running(POSTGRES, "db.example.org", 5432, print, machine.system(root=True))
    assert (
        problem == "PostgreSQL is not reachable at db.example.org:5432 (check DEARMP_DATABASE_URL)"
    )
    problem = ensure_running(POSTGRES, "127.0.0.1", 5433, print, machine.system(root=True))
    assert problem == "PostgreSQL is not reachable at 127.0.0.1:5433 (check DEARMP_DATABASE_URL)"
    assert machine.ran == []  # nor on a port the local server does not listen on

    machine = Machine(installed={"pg_ctlcluster"}, start_fails=True)
    problem = ensure_running(POSTGRES, "127.0.0.1", 5432, print, machine.system(root=True))
    assert problem is not None and problem.endswith("Error: could not bind")
