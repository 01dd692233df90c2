"""The whole pipeline, as a supporter meets it: CPU per signature in every process, capacity, and
how long a letter takes to reach the mail server after the confirm button is pressed.

Run with ``.venv/bin/python bench/pipeline.py`` (in ``make bench``). It starts the system as
``make run`` does (relay, resolver, mailer, updates and intake, each ``dearmp serve``) on its own
database and broker namespace, with its own SMTP sink in this process, then drives signatures
through the JSON API and, for each confirmation email, what a supporter does: open the link,
press the button, land on the thank-you page (four requests per signature). Three emails go out
per signature: the confirmation, the letter to the MP and the supporter's copy.

For each rate (steady 20, 50 and 100 signatures/s, then as fast as it can) it prints, per process,
CPU milliseconds per signature (psutil, user + system, children included) and peak RSS; the
letters/s; and the percentiles of press → letter at the sink. PostgreSQL is counted as the
backends connected to the bench's database plus the cluster's own background processes;
RabbitMQ as its ``beam.smp``. Beside them, in the same run, the raw reference: ``smtplib``
sending the same number of messages to the same sink on one connection.

Environment: PIPELINE_RATES (default "20,50,100,max"), PIPELINE_SECONDS (per steady rate,
default 20), PIPELINE_MAX_N (signatures in the "max" phase, default 1500), PIPELINE_PROFILE=1
to record each worker with py-spy during the 50/s phase (PIPELINE_PROFILE_PHASE: another one,
e.g. "20/s"; top frames printed; needs py-spy).
"""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from statistics import quantiles
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from shared.broker.declare import delete_all  # noqa: E402
from shared.topology import Topology  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AMQP = os.environ.get("DEARMP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
RATES = os.environ.get("PIPELINE_RATES", "20,50,100,max").split(",")
SECONDS = float(os.environ.get("PIPELINE_SECONDS", 20))
MAX_N = int(os.environ.get("PIPELINE_MAX_N", 1500))
PROFILE = os.environ.get("PIPELINE_PROFILE") == "1"
WARM_UP = 40  # signatures before the measured phases (imports, pools, caches)
LOG_STATEMENTS = os.environ.get("PIPELINE_LOG_STATEMENTS") == "1"
PG_LOG = Path(os.environ.get("PIPELINE_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
PROFILE_PHASE = os.environ.get("PIPELINE_PROFILE_PHASE", "50/s")  # which phase py-spy records
CAMPAIGN = "guardians-for-children"
POSTCODES = ["GU11 1AA", "GU12 4BB", "BR8 7RE"]  # demo data: two MPs with email
WORKERS = ("relay", "resolver", "mailer", "updates", "intake")
MSGID = re.compile(rb"^Message-ID:\s*<(\w+)\.([0-9a-f-]{36})@", re.M | re.I)
CONFIRM = re.compile(r"(https?://\S+/confirm/[A-Za-z0-9_\-.]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the sink ------------------------------------------------------------------------------------
@dataclass
class Ledger:
    """What reached the sink: the time each (purpose, signature) arrived, and confirm links."""

    arrived: dict[tuple[str, str], float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_confirmation: Any = None

    def count(self, purpose: str) -> int:
        with self.lock:
            return self.counts[purpose]


class Sink:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.monotonic()
        data: bytes = envelope.content
        found = MSGID.search(data)
        purpose, sig = (found.group(1).decode(), found.group(2).decode()) if found else ("?", "")
        with self.ledger.lock:
            self.ledger.arrived.setdefault((purpose, sig), now)
            self.ledger.counts[purpose] += 1
        if purpose == "confirmation" and self.ledger.on_confirmation:
            msg = email.message_from_bytes(data, policy=email.policy.default)
            text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            link = CONFIRM.search(text)
            if link:
                self.ledger.on_confirmation(sig, link.group(1))
        return "250 Message accepted"


# -- processes -----------------------------------------------------------------------------------
class Stack:
    def __init__(self) -> None:
        self.db = f"dearmp_pipeline_{uuid.uuid4().hex[:8]}"
        self.database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.db}"
        self.namespace = f"pipe{uuid.uuid4().hex[:8]}"
        self.http_port = free_port()
        self.smtp_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = ROOT / "var" / "bench-logs"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DEARMP_DATABASE_URL": self.database_url,
            "DEARMP_AMQP_URL": AMQP,
            "DEARMP_BROKER_NAMESPACE": self.namespace,
            "DEARMP_SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            "DEARMP_BASE_URL": self.base_url,
            "DEARMP_HTTP_PORT": str(self.http_port),
            "DEARMP_SECRET_KEY": "pipeline-bench-secret",
            "DEARMP_RATE_LIMIT_IP": "100000000/600",
            "DEARMP_RESOLVER_BACKENDS": "local",
            "PYTHONUNBUFFERED": "1",
        }

    def prepare(self) -> None:
        from services.ops.devrun import load_demo
        from shared.db import ensure_database, upgrade

        ensure_database(self.database_url)
        upgrade(self.database_url)
        load_demo(self.database_url)
        if LOG_STATEMENTS:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"ALTER DATABASE \"{self.db}\" SET log_statement = 'all'"))
            admin.dispose()

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in WORKERS:
            env = {**self.env(), "DEARMP_METRICS_PORT": str(free_port()), "PGAPPNAME": name}
            log = (self.logs / f"{self.namespace}-{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.ops.cli", "serve", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise SystemExit("intake did not become ready; see var/bench-logs/")
        time.sleep(3)  # the workers declare their queues and start consuming

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            delete_all(AMQP, Topology(self.namespace), [1000, 5000, 30000, 120000])
        except Exception:  # noqa: BLE001
            pass
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
        admin.dispose()


def postgres_processes(db: str) -> list[psutil.Process]:
    """The backends connected to the bench's database and the cluster's background processes
    (WAL writer, checkpointer...), not other databases' backends."""
    admin = sa.create_engine(PG_ADMIN)
    with admin.connect() as conn:
        ours = set(
            conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :db"), {"db": db}
            ).scalars()
        )
        background = set(
            conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'")
            ).scalars()
        )
    admin.dispose()
    out = []
    for pid in ours | background:
        try:
            out.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return out


def rabbit_process() -> psutil.Process | None:
    """The RabbitMQ node the bench talks to: the process listening on its AMQP port."""
    port = urlparse(AMQP).port or 5672
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


class Meter:
    """CPU seconds and peak RSS per process group, between ``start`` and ``stop``."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak_rss: dict[str, int] = defaultdict(int)
        self._cpu0: dict[tuple[str, int], float] = {}
        self._stopping = threading.Event()

    def groups(self) -> dict[str, list[psutil.Process]]:
        out: dict[str, list[psutil.Process]] = {}
        for name, popen in self.stack.procs.items():
            proc = psutil.Process(popen.pid)
            out[name] = [proc, *proc.children(recursive=True)]
        out["postgresql"] = postgres_processes(self.stack.db)
        rabbit = rabbit_process()
        out["rabbitmq"] = [rabbit] if rabbit else []
        out["client+sink"] = [psutil.Process()]
        return out

    def _sample(self) -> dict[tuple[str, int], float]:
        out = {}
        for name, procs in self.groups().items():
            for proc in procs:
                try:
                    t = proc.cpu_times()
                    out[(name, proc.pid)] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        return out

    def start(self) -> None:
        self._cpu0 = self._sample()
        self.peak_rss.clear()
        self._stopping.clear()
        threading.Thread(target=self._watch_rss, daemon=True).start()

    def _watch_rss(self) -> None:
        while not self._stopping.wait(0.5):
            for name, procs in self.groups().items():
                if name in ("postgresql", "rabbitmq", "client+sink"):
                    continue
                try:
                    rss = sum(p.memory_info().rss for p in procs)
                except psutil.NoSuchProcess:
                    continue
                self.peak_rss[name] = max(self.peak_rss[name], rss)

    def stop(self) -> dict[str, float]:
        self._stopping.set()
        cpu1 = self._sample()
        out: dict[str, float] = defaultdict(float)
        for key, value in cpu1.items():
            out[key[0]] += value - self._cpu0.get(key, 0.0)
        return dict(out)


# -- the supporters ------------------------------------------------------------------------------
class Client:
    """Keep-alive HTTP connections, one per thread; cookies per supporter."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()
        self.errors: Counter[str] = Counter()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=60
                )
            try:
                conn.request(method, path, body, headers or {})
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def sign(self, n: int, run: str) -> None:
        body = json.dumps(
            {
                "first_name": "Jo",
                "last_name": "Bloggs",
                "email": f"p{run}-{n}@example.org",
                "postcode": POSTCODES[n % len(POSTCODES)],
                "address_line1": f"{n} Test Street",
                "town": "Aldershot",
                "comment": "Please act.",
                "opt_in": n % 3 == 0,
                "consent": True,
            }
        ).encode()
        status, _, data = self.request(
            "POST",
            f"/api/v1/campaigns/{CAMPAIGN}/signatures",
            body,
            {"Content-Type": "application/json"},
        )
        if status != 202:
            self.errors[f"sign {status}"] += 1

    def confirm(self, link: str, pressed: dict[str, float], sig: str) -> None:
        path = urlparse(link).path
        status, headers, page = self.request("GET", path)
        token = CSRF.search(page.decode())
        cookie = headers.get("set-cookie", "").split(";")[0]
        if status != 200 or not token:
            self.errors[f"confirm page {status}"] += 1
            return
        pressed[sig] = time.monotonic()
        status, headers, _ = self.request(
            "POST",
            path,
            f"csrf_token={token.group(1)}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        if status != 303:
            self.errors[f"confirm {status}"] += 1
            return
        status, _, _ = self.request("GET", urlparse(headers["location"]).path)
        if status != 200:
            self.errors[f"thanks {status}"] += 1


@dataclass
class Phase:
    label: str
    signatures: int
    seconds: float
    cpu: dict[str, float]
    rss: dict[str, int]
    latencies: list[float]
    errors: dict[str, int]


def run_phase(
    stack: Stack, ledger: Ledger, meter: Meter, label: str, rate: float | None, n: int
) -> Phase:
    run = uuid.uuid4().hex[:6]
    client = Client(stack.http_port)
    pool = ThreadPoolExecutor(max_workers=24)
    pressed: dict[str, float] = {}
    sent_before = ledger.count("copy")
    ledger.on_confirmation = lambda sig, link: pool.submit(client.confirm, link, pressed, sig)
    profilers = start_profiles(stack, label) if PROFILE and label == PROFILE_PHASE else []

    meter.start()
    t0 = time.monotonic()
    for i in range(n):
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        pool.submit(client.sign, i, run)
    deadline = time.monotonic() + 120 + n / 5
    while ledger.count("copy") - sent_before < n and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    cpu = meter.stop()
    pool.shutdown(wait=True)
    for proc in profilers:
        proc.wait(60)
    with ledger.lock:
        latencies = [
            ledger.arrived[("letter", sig)] - t
            for sig, t in pressed.items()
            if ("letter", sig) in ledger.arrived
        ]
    done = ledger.count("copy") - sent_before
    if done < n:
        client.errors["not finished"] += n - done
    return Phase(label, n, elapsed, cpu, dict(meter.peak_rss), latencies, dict(client.errors))


def start_profiles(stack: Stack, label: str) -> list[subprocess.Popen[bytes]]:
    out = []
    folder = ROOT / "var" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    for name, proc in stack.procs.items():
        out.append(
            subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "-p",
                    str(proc.pid),
                    "-d",
                    str(int(SECONDS * 0.8)),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(folder / f"{name}.txt"),
                    "--nonblocking",
                    "--gil",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return out


def _frame(frame: str) -> str:
    return re.sub(r" \(.*?/(site-packages|lib/python3\.\d+|main)/", " (", frame)


def top_frames(path: Path, k: int = 8) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's samples of threads holding the GIL (CPU, not waiting): (self time per
    function, inclusive time per function of ours: shared/ and services/), each as a share."""
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_frame(frames[-1])] += n
        for frame in {_frame(f) for f in frames if re.search(r"[( /](shared|services)/", f)}:
            ours[frame] += n
    if not total:
        return [], []
    return (
        [(f, n / total) for f, n in own.most_common(k)],
        [(f, n / total) for f, n in ours.most_common(k + 4)],
    )


def count_statements(stack: Stack, log_from: int, signatures: int) -> dict[str, float]:
    """Statements per signature for each service, from PostgreSQL's log (``log_statement =
    all`` on the bench's database: one line per simple statement or prepared execution, BEGIN
    and COMMIT included), attributing each backend by its application name (``PGAPPNAME``)."""
    admin = sa.create_engine(PG_ADMIN)
    with admin.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT pid, application_name FROM pg_stat_activity WHERE datname = :d"),
            {"d": stack.db},
        ).all()
    admin.dispose()
    names = {str(r.pid): r.application_name or "?" for r in rows}
    line = re.compile(r"\[(\d+)\] \S*@" + re.escape(stack.db) + r" LOG:  (statement|execute)")
    counts: Counter[str] = Counter()
    with PG_LOG.open("rb") as log:
        log.seek(log_from)
        for raw in log:
            found = line.search(raw.decode(errors="replace"))
            if found:
                counts[names.get(found.group(1), "closed backends")] += 1
    out = {name: n / signatures for name, n in sorted(counts.items())}
    out["total"] = sum(counts.values()) / signatures
    return out


def raw_smtplib(port: int, ledger: Ledger, n: int) -> tuple[float, float]:
    """(messages/s, client CPU ms per message): smtplib on one connection to the same sink."""
    body = (
        "From: letters@dearmp.invalid\r\nTo: mp@parliament.uk\r\nSubject: A letter\r\n"
        "Message-ID: <raw.{id}@dearmp.invalid>\r\n\r\n" + "Dear MP,\r\n" * 60
    )
    me = psutil.Process()
    cpu0 = sum(me.cpu_times()[:2])
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(n):
            smtp.sendmail(
                "letters@dearmp.invalid", ["mp@parliament.uk"], body.format(id=uuid.uuid4())
            )
    elapsed = time.monotonic() - t0
    return n / elapsed, (sum(me.cpu_times()[:2]) - cpu0) * 1000 / n


def report(phases: list[Phase], raw: tuple[float, float]) -> None:
    names = [*WORKERS, "postgresql", "rabbitmq"]
    print(
        "\nCPU ms per signature (sign, confirm page, confirm, thank-you page; confirmation, letter, copy)"
    )
    header = f"{'process':<12}" + "".join(f"{p.label:>11}" for p in phases)
    print(header)
    for name in [*names, "client+sink"]:
        print(
            f"{name:<12}"
            + "".join(f"{p.cpu.get(name, 0) * 1000 / p.signatures:>11.2f}" for p in phases)
        )
    print(
        f"{'total':<12}"
        + "".join(
            f"{sum(p.cpu.get(n, 0) for n in names) * 1000 / p.signatures:>11.2f}" for p in phases
        )
        + "   (Dear MP + PostgreSQL + RabbitMQ)"
    )
    print("\nthroughput and latency (press → letter at the sink)")
    for p in phases:
        lat = sorted(p.latencies)
        if len(lat) >= 2:
            q = quantiles(lat, n=100)
            pcts = (
                f"p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms"
            )
        else:
            pcts = "no letters"
        rate = p.signatures / p.seconds
        print(f"{p.label:>6}: {p.signatures} signatures in {p.seconds:.1f}s = {rate:.1f} letters/s")
        print(f"        press → letter {pcts}; errors {p.errors or 'none'}")
    print("\npeak RSS (MB)")
    for p in phases:
        print(f"{p.label:>6}: " + ", ".join(f"{n} {p.rss.get(n, 0) / 2**20:.0f}" for n in WORKERS))
    print(
        f"\nraw smtplib → the same sink: {raw[0]:.0f} messages/s, {raw[1]:.2f} ms client CPU per message"
    )


def main() -> int:
    stack = Stack()
    ledger = Ledger()
    controller = Controller(Sink(ledger), hostname="127.0.0.1", port=stack.smtp_port)
    controller.start()
    stack.prepare()
    log_from = PG_LOG.stat().st_size if LOG_STATEMENTS else 0
    stack.start()
    meter = Meter(stack)
    phases = []
    try:
        # Warm up: the first signatures pay for imports, pools and caches.
        run_phase(stack, ledger, meter, "warm-up", 20, WARM_UP)
        for rate in RATES:
            if rate == "max":
                phases.append(run_phase(stack, ledger, meter, "max", None, MAX_N))
            else:
                r = float(rate)
                phases.append(run_phase(stack, ledger, meter, f"{rate}/s", r, int(r * SECONDS)))
            print(f"phase {phases[-1].label} done in {phases[-1].seconds:.1f}s", flush=True)
        raw = raw_smtplib(stack.smtp_port, ledger, 2000)
        if LOG_STATEMENTS:
            statements = count_statements(stack, log_from, sum(p.signatures for p in phases) + WARM_UP)
    finally:
        stack.stop()
        controller.stop()
    report(phases, raw)
    print(f"emails at the sink by purpose: {dict(ledger.counts)}")
    if LOG_STATEMENTS:
        print("statements per signature (all phases and the warm-up, from PostgreSQL's log):")
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in statements.items()))
    if PROFILE:
        print(f"\nprofiles (py-spy, {PROFILE_PHASE} phase): self time share, top frames")
        for name in WORKERS:
            path = ROOT / "var" / "profiles" / f"{name}.txt"
            if path.exists():
                own, ours = top_frames(path)
                print(f"-- {name}: self")
                for frame, share in own:
                    print(f"   {share * 100:5.1f}%  {frame}")
                print(f"-- {name}: inclusive, our code")
                for frame, share in ours:
                    print(f"   {share * 100:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
