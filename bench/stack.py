"""The whole of Dear MP on private servers, for soak runs and whole-pipeline benchmarks.

``Stack`` starts what ``make run`` starts (services/ops/devrun.py), with replicas and on servers of
its own, all in one temporary directory, and removes everything in ``close()``:

- a private PostgreSQL cluster (``initdb`` as the ``postgres`` user when run as root, ``pg_ctl``
  on a free port, its socket in the temporary directory) and a private RabbitMQ: a list of nodes
  (``rabbitmq-server`` with its own node name, ports, data and log directories, no plugins, and
  an Erlang cookie of its own), joined with ``rabbitmqctl join_cluster`` when there are several;
- the database created and migrated (``shared.db.upgrade``), the demo campaigns and reference
  data loaded (``devrun.load_demo``);
- a recording SMTP sink (bench/sink.py) in this process;
- ``dearmp serve NAME`` processes, as many of each as asked (``replicas``), each with its own
  metrics port and log file; ``kill`` (SIGKILL) and ``replace`` do what a crash and a supervisor
  do.

It never touches the shared servers on 5432/5672: every ``rabbitmqctl`` call names one of its own
nodes, and ``pg_ctl`` only ever gets its own data directory. Read-back helpers (``outbox_backlog``,
``queues``, ``letters`` …) read the private database and broker. Drive it with
bench/supporters.py; bench/soak.py adds the faults and the report.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.sink import RecordingSink  # noqa: E402

SERVICES = ("relay", "resolver", "mailer", "updates", "intake")  # the order make run starts them
REPLICAS = {"relay": 2, "resolver": 2, "mailer": 2, "updates": 1, "intake": 1}
SECRET = "soak-secret-key-0123456789abcdef"
SANDBOX_TO = "sandbox@example.org"


def free_port(taken: set[int] | None = None) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if taken is None or port not in taken:
            if taken is not None:
                taken.add(port)
            return port


def log(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


class ServerError(RuntimeError):
    """A private server could not be started or controlled."""


def _run(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ServerError(
            f"{' '.join(args[:4])}… exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )
    return done


# -- PostgreSQL ---------------------------------------------------------------------------------
def postgres_bin() -> Path:
    """Where initdb and pg_ctl are: $SOAK_PG_BIN, the newest /usr/lib/postgresql/*/bin, or PATH."""
    if os.environ.get("SOAK_PG_BIN"):
        return Path(os.environ["SOAK_PG_BIN"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise ServerError("PostgreSQL's initdb was not found (set SOAK_PG_BIN)")


class PrivatePostgres:
    """A PostgreSQL cluster of our own, in ``base``; listens on 127.0.0.1:``port`` only."""

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.data, self.sockets, self.logs = base / "pg-data", base / "pg-sock", base / "pg-log"
        self.bin = postgres_bin()
        self.as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bin / tool), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else cmd

    @property
    def options(self) -> str:
        return (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=400"
        )

    def server_url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        for d in (self.data, self.sockets, self.logs):
            d.mkdir(parents=True, exist_ok=True)
            if self.as_postgres:
                shutil.chown(d, "postgres", "postgres")
        _run(
            self._cmd(
                "initdb",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
                str(self.data),
            )
        )
        self._ctl("start")

    def _ctl(self, action: str, *extra: str) -> None:
        _run(
            self._cmd(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.logs / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                self.options,
                *extra,
                action,
            ),
            timeout=90,
        )

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, then it starts again."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self._ctl("stop", "-m", "fast")
        except (ServerError, subprocess.TimeoutExpired):
            self._ctl("stop", "-m", "immediate")


# -- RabbitMQ -----------------------------------------------------------------------------------
def rabbitmq_sbin() -> Path:
    """The real scripts (not Debian's /usr/sbin wrappers, which switch to the rabbitmq user and
    its home, so its cookie): $SOAK_RABBITMQ_SBIN, /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin,
    or the directory of rabbitmq-server on PATH."""
    if os.environ.get("SOAK_RABBITMQ_SBIN"):
        return Path(os.environ["SOAK_RABBITMQ_SBIN"])
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("rabbitmq-server")
    if which and (Path(which).resolve().parent / "rabbitmq-env").exists():
        return Path(which).resolve().parent
    raise ServerError("RabbitMQ's scripts were not found (set SOAK_RABBITMQ_SBIN)")


@dataclass
class RabbitNode:
    """One RabbitMQ node of ours: its own name, AMQP and distribution ports, directories."""

    name: str  # e.g. soak1a2b3c@localhost
    port: int
    dist_port: int
    base: Path
    home: Path  # HOME for the node and for rabbitmqctl: the Erlang cookie they share
    proc: subprocess.Popen[bytes] | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            # Not /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # A crashing Erlang VM (a CLI call after the directory went) writes its dump here,
            # not into the working directory.
            "ERL_CRASH_DUMP": str(self.base / "erl_crash.dump"),
        }

    def ctl(
        self, *args: str, timeout: float = 90, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> …``: never any other node."""
        if not self.home.exists():
            raise ServerError(f"{self.name} is gone (its directory was removed)")
        return _run(
            [str(rabbitmq_sbin() / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            timeout=timeout,
            check=check,
        )

    def start(self, timeout: float = 120) -> None:
        for d in ("mnesia", "log"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\nlog.file.level = info\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("# this node's settings are in its env\n")
        out = (self.base / "log" / "server.out").open("ab")
        self.proc = subprocess.Popen(
            [str(rabbitmq_sbin() / "rabbitmq-server")],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.base,
        )
        self.await_startup(timeout)

    def await_startup(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = self.ctl("await_startup", "--timeout", "10", check=False, timeout=30)
            if done.returncode == 0:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"RabbitMQ node {self.name} exited; see {self.base}/log")
            if time.monotonic() > deadline:
                raise ServerError(f"RabbitMQ node {self.name} did not start in {timeout:.0f}s")
            time.sleep(1)

    def queues(self) -> dict[str, tuple[int, int]]:
        """{queue: (ready, unacknowledged)} as the node reports them."""
        done = self.ctl(
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            timeout=60,
        )
        out: dict[str, tuple[int, int]] = {}
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                out[parts[0]] = (int(parts[1]), int(parts[2]))
        return out

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.ctl("stop", check=False, timeout=90)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own node's process group
                self.proc.wait(10)
        self.proc = None


class PrivateBroker:
    """One RabbitMQ node, or several joined in a cluster (``nodes[0]`` first)."""

    def __init__(self, base: Path, count: int, taken: set[int]) -> None:
        tag = uuid.uuid4().hex[:6]
        home = base / "erlang-home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        self.nodes = [
            RabbitNode(
                f"soak{tag}{i}@localhost",
                free_port(taken),
                free_port(taken),
                base / f"rabbit-{i}",
                home,
            )
            for i in range(1, count + 1)
        ]

    @property
    def amqp_url(self) -> str:
        """DEARMP_AMQP_URL: every node's URL, separated by commas (clients connect to the first
        that answers and, after losing one, try the others first)."""
        return ",".join(n.amqp_url for n in self.nodes)

    @property
    def amqp_urls(self) -> list[str]:
        return [n.amqp_url for n in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("reset")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.await_startup()

    def restart_app(self, down_seconds: float, node: int = 0) -> None:
        """``stop_app``, wait, ``start_app``, ``await_startup``: the broker goes away and comes
        back with its durable queues. ``start_app`` runs whatever happens."""
        target = self.nodes[node]
        try:
            target.ctl("stop_app")
            time.sleep(down_seconds)
        finally:
            target.ctl("start_app")
            target.await_startup()

    def close_all_connections(self) -> None:
        """Every client connection, on every node."""
        for node in self.nodes:
            node.ctl("close_all_connections", "soak: closing every connection")

    def _first_answering(self, what: Callable[[RabbitNode], Any]) -> Any:
        error: Exception | None = None
        for node in self.nodes:
            try:
                return what(node)
            except (ServerError, subprocess.TimeoutExpired) as exc:
                error = exc
        raise error or ServerError("no RabbitMQ node")

    def queues(self) -> dict[str, tuple[int, int]]:
        """{queue: (ready, unacknowledged)}, from the first node that answers."""
        return self._first_answering(lambda node: node.queues())  # type: ignore[no-any-return]

    def members(self) -> dict[str, list[str]]:
        """{quorum queue: the nodes holding a replica}."""
        done = self._first_answering(
            lambda node: node.ctl(
                "list_queues", "-q", "--no-table-headers", "name", "type", "members", timeout=60
            )
        )
        out: dict[str, list[str]] = {}
        for line in done.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] == "quorum":
                out[parts[0]] = sorted(re.findall(r"[\w.-]+@[\w.-]+", parts[2]))
        return out

    def stop(self) -> None:
        for node in reversed(self.nodes):
            try:
                node.stop()
            except Exception as exc:  # stop the others anyway
                log(f"could not stop {node.name}: {exc}")


# -- the services -------------------------------------------------------------------------------
@dataclass
class ServiceProc:
    """One ``dearmp serve NAME`` process in slot ``index``; ``generation`` counts replacements."""

    name: str
    index: int
    env: dict[str, str]
    logs: Path
    threads: int = 1
    generation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.name}#{self.index}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ServiceProc:
        self.generation += 1
        self.log_path = self.logs / f"{self.name}-{self.index}.{self.generation}.log"
        args = [sys.executable, "-m", "services.ops.cli", "serve", self.name]
        if self.name != "intake":
            args += ["--threads", str(self.threads)]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        return (
            self.log_path.read_text(errors="replace")
            if self.log_path and self.log_path.exists()
            else ""
        )

    def wait_started(self, timeout: float = 60) -> float:
        """Seconds until it logged that it started ("worker started", "relay started", "intake
        listening"), or raise."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            text = self.output()
            if 'started"' in text or "intake listening" in text:
                return time.monotonic() - started
            if not self.alive:
                raise ServerError(f"{self.label} exited: {text[-2000:]}")
            time.sleep(0.1)
        raise ServerError(f"{self.label} did not start in {timeout:.0f}s")

    def ports_to(self, port: int) -> set[int]:
        """The local ports of this process's open TCP connections to 127.0.0.1:``port`` (its
        SMTP connections to the sink, say): from /proc, so Linux only (empty elsewhere)."""
        if not self.alive or self.proc is None:
            return set()
        try:
            inodes = set()
            for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
            found = set()
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                for line in Path(table).read_text().splitlines()[1:]:
                    parts = line.split()
                    local, remote, inode = parts[1], parts[2], parts[9]
                    if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                        found.add(int(local.rsplit(":", 1)[1], 16))
            return found
        except OSError:
            return set()

    def kill(self) -> int | None:
        """SIGKILL: no clean-up of any kind. Returns the pid it had."""
        if not self.alive or self.proc is None:
            return None
        pid = self.proc.pid
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return pid

    def terminate(self, timeout: float = 30) -> None:
        if self.proc is None or not self.alive:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Stack:
    """Everything, started by ``start()`` and removed by ``close()`` (also on errors)."""

    run_dir: Path  # logs and results are kept here; the servers' data go to a temporary dir
    replicas: dict[str, int] = field(default_factory=lambda: dict(REPLICAS))
    cluster: int = 1
    threads: int = 1
    env_overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs = self.run_dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="dearmp-stack-"))
        self.tmp.chmod(0o755)  # the postgres user walks into it
        self._taken: set[int] = set()
        self.pg = PrivatePostgres(self.tmp / "postgres", free_port(self._taken))
        self.broker = PrivateBroker(self.tmp / "rabbitmq", self.cluster, self._taken)
        self.sink = RecordingSink(port=free_port(self._taken))
        self.http_port = free_port(self._taken)
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.database_url = self.pg.server_url("dearmp")
        self.procs: dict[str, list[ServiceProc]] = {}
        self.engine: sa.Engine | None = None
        self._closed = False
        self._lock = threading.Lock()

    # -- start ----------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What every process of the system is given (and the CLI, for `dearmp` commands)."""
        return {
            **os.environ,
            "DEARMP_DATABASE_URL": self.database_url,
            "DEARMP_AMQP_URL": self.broker.amqp_url,
            "DEARMP_BROKER_NAMESPACE": "dearmp",
            "DEARMP_SMTP_URL": self.sink.url,
            "DEARMP_BASE_URL": self.base_url,
            "DEARMP_HTTP_PORT": str(self.http_port),
            "DEARMP_SECRET_KEY": SECRET,
            "DEARMP_SANDBOX_TO": SANDBOX_TO,
            # Every supporter of a run signs from 127.0.0.1; the limits have their own tests.
            "DEARMP_RATE_LIMIT_IP": "10000000/60",
            "DEARMP_RATE_LIMIT_EMAIL": "10000000/60",
            # The demo postcodes are all in the local table: never ask postcodes.io.
            "DEARMP_RESOLVER_BACKENDS": "local",
            "DEARMP_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            **self.env_overrides,
        }

    def start(self) -> Stack:
        try:
            t0 = time.monotonic()
            self.pg.start()
            log(f"PostgreSQL on 127.0.0.1:{self.pg.port} ({time.monotonic() - t0:.1f}s)")
            t1 = time.monotonic()
            self.broker.start()
            names = ", ".join(f"{n.name} :{n.port}" for n in self.broker.nodes)
            log(f"RabbitMQ {names} ({time.monotonic() - t1:.1f}s)")
            self._prepare_database()
            self.sink.start()
            log(f"SMTP sink on {self.sink.url}")
            for name in SERVICES:
                for index in range(self.replicas.get(name, 0)):
                    self._start(name, index)
            for procs in self.procs.values():
                for p in procs:
                    p.wait_started()
            self._wait_http()
            log(f"{self.describe()} up in {time.monotonic() - t0:.1f}s; {self.base_url}")
            return self
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        return ", ".join(f"{len(v)} {k}" for k, v in self.procs.items())

    def _prepare_database(self) -> None:
        from services.ops.devrun import load_demo
        from shared.db import ensure_database, upgrade

        ensure_database(self.database_url)
        upgrade(self.database_url)
        load_demo(self.database_url)
        # Pre-ping: the read-backs go on working across a PostgreSQL restart.
        self.engine = sa.create_engine(self.database_url, pool_size=4, pool_pre_ping=True)

    def _start(self, name: str, index: int) -> ServiceProc:
        slots = self.procs.setdefault(name, [])
        if index < len(slots):
            return slots[index].start()
        env = {**self.env, "DEARMP_METRICS_PORT": str(free_port(self._taken))}
        proc = ServiceProc(name, index, env, self.logs, threads=self.threads)
        slots.append(proc)
        return proc.start()

    def _wait_http(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServerError("intake did not answer /healthz")

    # -- faults a supervisor would see ------------------------------------------------------------
    def kill(self, name: str, index: int = 0) -> int | None:
        """SIGKILL one process; returns its pid."""
        return self.procs[name][index].kill()

    def replace(self, name: str, index: int = 0) -> ServiceProc:
        """Start a new process in the slot (as a supervisor restarts a crashed one)."""
        with self._lock:
            return self._start(name, index)

    # -- reading back ----------------------------------------------------------------------------
    def rows(self, sql: str, **params: Any) -> list[Any]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def scalar(self, sql: str, **params: Any) -> Any:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def outbox_backlog(self) -> int:
        return int(self.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))

    def events_in_queues(self, within_s: int = 600) -> dict[str, int]:
        """{service: events of the last ``within_s`` seconds the relay has published to it
        that it has not handled yet} (outbox rows sent, not in the service's inbox). Exact only
        for a consumer that records every event it handles (the resolver; intake records none,
        the mailer and updates not all)."""
        from shared.topology import BINDINGS

        pairs = [(svc, key) for svc, keys in BINDINGS.items() for key in keys]
        values = ", ".join(f"(:s{i}, :k{i})" for i in range(len(pairs)))
        params: dict[str, Any] = {f"s{i}": svc for i, (svc, _k) in enumerate(pairs)}
        params.update({f"k{i}": key for i, (_s, key) in enumerate(pairs)})
        found = self.rows(
            f"SELECT b.service, count(*) AS n FROM outbox o "
            f"JOIN (VALUES {values}) AS b(service, key) ON o.routing_key = b.key "
            f"WHERE o.sent_at IS NOT NULL AND o.created_at > now() - make_interval(secs => :within) "
            f"AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.consumer = b.service "
            f"AND i.event_id = o.event_id) GROUP BY b.service",
            within=within_s,
            **params,
        )
        return {r.service: int(r.n) for r in found}

    def letters_unsettled(self) -> int:
        """Emails the mailer has not finished (created or sending)."""
        return int(self.scalar("SELECT count(*) FROM letters WHERE state IN ('created','sending')"))

    def letters(self, purpose: str) -> dict[str, Any]:
        """{signature id: row(state, sends, uncertain, error, recipient)} for one purpose."""
        found = self.rows(
            "SELECT signature_id, state, sends, uncertain, error, recipient "
            "FROM letters WHERE purpose = :purpose",
            purpose=purpose,
        )
        return {str(r.signature_id): r for r in found}

    def fanout_jobs(self) -> list[Any]:
        return self.rows("SELECT * FROM fanout_jobs ORDER BY id")

    def queues(self) -> dict[str, tuple[int, int]]:
        """Every queue of the system's namespace: (ready, unacknowledged)."""
        return {k: v for k, v in self.broker.queues().items() if k.startswith("dearmp.")}

    def dearmp(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a ``dearmp`` command against this system."""
        return subprocess.run(
            [sys.executable, "-m", "services.ops.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # -- stop -------------------------------------------------------------------------------------
    def close(self, keep_data: bool = False) -> None:
        """Stop every process, the sink, RabbitMQ and PostgreSQL; remove the temporary dir.
        Each step runs whatever the others did."""
        if self._closed:
            return
        self._closed = True
        steps: list[tuple[str, Callable[[], None]]] = [
            ("services", self._stop_services),
            ("engine", lambda: self.engine.dispose() if self.engine else None),
            ("sink", self.sink.stop),
            ("rabbitmq", self.broker.stop),
            ("postgres", self.pg.stop),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as exc:
                log(f"stopping {what} failed: {type(exc).__name__}: {exc}")
        for node in self.broker.nodes:  # keep the broker's log with the run's
            src = node.base / "log"
            if src.exists():
                shutil.copytree(
                    src, self.logs / f"rabbitmq-{node.name.split('@')[0]}", dirs_exist_ok=True
                )
        if self.pg.logs.exists():
            shutil.copytree(self.pg.logs, self.logs / "postgres", dirs_exist_ok=True)
        if not keep_data:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _stop_services(self) -> None:
        everyone = [p for procs in self.procs.values() for p in procs]
        for p in everyone:
            if p.alive and p.proc is not None:
                p.proc.send_signal(signal.SIGTERM)
        for p in everyone:
            p.terminate(30)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
