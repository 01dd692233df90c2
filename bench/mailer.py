"""Mailer benchmark: letters per second through the mailer process, next to raw smtplib.

Run with ``make bench`` (or ``.venv/bin/python bench/mailer.py``). It talks only to the local
PostgreSQL, RabbitMQ and its own SMTP sinks on 127.0.0.1; it creates its own database and broker
namespace and removes both at the end. Every run is bounded in count and in time.

What it measures, in one run, interleaved round by round so a noisy moment hits every mode:

  raw       smtplib on one connection to an aiosmtpd sink (``shared.mailcatcher``): the same
            letter message, sent back to back. The ceiling for one SMTP connection to this sink.
  mailer    N ``signature.resolved`` events written into the outbox at once, with ``dearmp serve
            relay`` and ``dearmp serve mailer --threads T`` running (real processes), timed from
            the commit until the sink holds every message. Each letter is two SMTP messages (the
            letter to the target, then the supporter's copy), each with its exactly-once
            bookkeeping (claim, send, record, letter.sent in the outbox). Also 2 mailer processes
            of 2 threads each, as ``--scale mailer=2`` would run.
  stalled   the mailer's 8 threads, one of which is stuck on a message the sink takes 30 s to
            answer (``stall_seconds``, stored first, as Postfix queues it): the other threads'
            messages/s until every message but the stalled letter's copy is in (target: ≥ 60%
            of raw smtplib), then the stalled one finishes and is checked like every other.
  scaling   the same through a sink that answers each message after 50 ms (``delay=0.05``), as a
            real mail server might: 1 thread against 8 threads in one process, and against 8
            senders as 2 processes of 4 threads (``--scale``) (target: 8 deliver ≥ 7×).

Correctness is checked after every mailer run: the sink holds exactly the expected Message-IDs,
each once, and every letters row is ``sent``.

Environment (optional): BENCH_N (letters per fast run, default 1000), BENCH_RAW_N (messages for
raw, default 2000), BENCH_THREADS (thread counts for the fast runs, default "1,4,8"), BENCH_SCALE_N1
and BENCH_SCALE_N8 (letters for the 50 ms runs, default 60 and 480), BENCH_ROUNDS (default 3),
BENCH_TIME_LIMIT (seconds per run, default 180), BENCH_MODES (any of "throughput,stalled,scaling",
default all three: "scaling" alone runs only the 50 ms runs), BENCH_STALL (seconds, default 30).
"""

from __future__ import annotations

import os
import platform
import signal
import smtplib
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from services.mailer import compose  # noqa: E402
from shared import outbox  # noqa: E402
from shared.broker.declare import connection_parameters, declare_all, delete_all  # noqa: E402
from shared.campaigns import campaign_files, read_campaign_file, save_campaign  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import ensure_database, make_engine, upgrade  # noqa: E402
from shared.mailcatcher import MailCatcher  # noqa: E402
from shared.messages import Constituency, SignatureResolved, Supporter, Target  # noqa: E402
from shared.topology import Topology  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CAMPAIGN = "guardians-for-children"
MAIL_DOMAIN = "bench.invalid"

N = int(os.environ.get("BENCH_N", "1000"))
RAW_N = int(os.environ.get("BENCH_RAW_N", "2000"))
THREADS = [int(t) for t in os.environ.get("BENCH_THREADS", "1,4,8").split(",") if t.strip()]
SCALE_N1 = int(os.environ.get("BENCH_SCALE_N1", "60"))
SCALE_N8 = int(os.environ.get("BENCH_SCALE_N8", "480"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TIME_LIMIT = float(os.environ.get("BENCH_TIME_LIMIT", "180"))
MODES = {
    m.strip() for m in os.environ.get("BENCH_MODES", "throughput,stalled,scaling").split(",")
}
STALL = float(os.environ.get("BENCH_STALL", "30"))
STALLED_MODE = "mailer, 8 threads, 1 connection stalled"
RETRY_DELAYS = [1000, 5000]
TARGET_SHARE = 0.60  # mailer messages/s as a share of raw smtplib
TARGET_SCALING = 7.0
WARMUP = 10


@dataclass
class Result:
    mode: str
    messages: int
    seconds: float
    letters: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def letter_rate(self) -> float:
        return self.letters / self.seconds if self.seconds > 0 else 0.0


class BenchError(RuntimeError):
    pass


# -- workload ----------------------------------------------------------------------------------
def make_event(i: int) -> SignatureResolved:
    """A resolved signature of ordinary size: an address, a short comment, the demo MP."""
    return SignatureResolved(
        signature_id=uuid.uuid4(),
        campaign=CAMPAIGN,
        supporter=Supporter(
            first_name="Siân",
            last_name=f"Bloggs-{i}",
            email=f"supporter-{i:07d}@example.org",
            postcode="GU11 1AA",
            address_lines=[f"{i % 200 + 1} Test Street", "Aldershot"],
            comment="Every child trafficked into the UK deserves a guardian who is on their side.",
        ),
        constituency=Constituency(code="E14001063", name="Aldershot"),
        target=Target(name="Alex Demo", email="alex.demo.mp@demo-parliament.invalid"),
    )


def stage(engine: sa.Engine, events: list[SignatureResolved]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(events), 1000):
            chunk = events[start : start + 1000]
            outbox.add_many(conn, [(e, str(e.signature_id)) for e in chunk])


# -- processes ---------------------------------------------------------------------------------
class Services:
    """``dearmp serve relay`` and ``dearmp serve mailer`` as subprocesses, logs to var/bench/."""

    def __init__(self, env: dict[str, str], topology: Topology):
        self.env = env
        self.topology = topology
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.log_dir = ROOT / "var" / "bench"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, threads: int = 1, extra: dict[str, str] | None = None, replicas: int = 1
    ) -> None:
        """``replicas`` processes of the service (as ``docker compose --scale`` would run)."""
        log = (self.log_dir / f"mailer-bench-{name}.log").open("ab")
        self.procs[name] = [
            subprocess.Popen(
                [sys.executable, "-m", "services.ops.cli", "serve", name, "--threads", str(threads)],
                env={**os.environ, **self.env, **(extra or {}), "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            for _ in range(replicas)
        ]
        if name == "mailer":
            self._wait_consumers(threads * replicas)

    def _wait_consumers(self, threads: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs["mailer"]):
                raise BenchError("the mailer exited at start-up; see var/bench/")
            conn = pika.BlockingConnection(connection_parameters(AMQP_URL, name="bench-wait"))
            try:
                q = conn.channel().queue_declare(self.topology.queue("mailer"), passive=True)
                if q.method.consumer_count >= threads:
                    return
            finally:
                conn.close()
            time.sleep(0.2)
        raise BenchError(f"the mailer did not start {threads} consumers in {timeout}s")

    def stop(self, name: str) -> None:
        procs = self.procs.pop(name, [])
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


# -- the modes ---------------------------------------------------------------------------------
def bench_raw(sink: MailCatcher, settings: Settings) -> Result:
    """smtplib, one connection, the letter message (as the mailer would build it), back to back."""
    campaign = read_campaign_file(ROOT / "campaigns" / f"{CAMPAIGN}.yaml")
    event = make_event(0)
    msg = compose.letter(event.signature_id, campaign, event.supporter, event.target, settings)
    before = len(sink.messages)
    smtp = smtplib.SMTP(sink.host, sink.port, timeout=30)
    try:
        for _ in range(WARMUP):
            smtp.send_message(msg, to_addrs=["sandbox@bench.invalid"])
        started = time.perf_counter()
        deadline = time.monotonic() + TIME_LIMIT
        sent = 0
        while sent < RAW_N and time.monotonic() < deadline:
            smtp.send_message(msg, to_addrs=["sandbox@bench.invalid"])
            sent += 1
        seconds = time.perf_counter() - started
    finally:
        smtp.quit()
    if len(sink.messages) - before != sent + WARMUP:
        raise BenchError("raw: the sink did not receive every message")
    return Result("raw smtplib, 1 connection", sent, seconds)


def bench_mailer(
    engine: sa.Engine,
    services: Services,
    sink: MailCatcher,
    threads: int,
    letters: int,
    mode: str,
    replicas: int = 1,
    stall: float = 0.0,
) -> tuple[Result, list[str]]:
    """N letters through relay + mailer to ``sink``; returns the result and any problems.
    ``stall``: the first of them takes this long to be answered; the rate is then of every
    other message (all but the stalled letter's copy, which waits for it)."""
    services.start("mailer", threads, {"DEARMP_SMTP_URL": sink.url}, replicas)
    try:
        warm = [make_event(i) for i in range(WARMUP)]  # connections open, campaign cached
        stage(engine, warm)
        expected = len(sink.messages) + 2 * len(warm)
        if len(sink.handler.wait_for(expected, timeout=60)) < expected:
            raise BenchError(f"{mode}: warm-up letters did not arrive")
        events = [make_event(i) for i in range(letters)]
        start_count = len(sink.messages)
        if stall:
            sink.handler.stall_seconds, sink.handler.stall_messages = stall, 1
            sink.handler.stall_stores_first = True
        stage(engine, events)
        started = time.perf_counter()  # from the commit: nothing can be sent before it
        target = start_count + 2 * letters
        sink.handler.wait_for(target - (1 if stall else 0), timeout=TIME_LIMIT)
        seconds = time.perf_counter() - started
        measured = 2 * letters - (1 if stall else 0)
        if stall:
            if seconds >= stall:
                raise BenchError(f"{mode}: the others took longer than the stall ({seconds:.1f}s)")
            sink.handler.wait_for(target, timeout=TIME_LIMIT + stall)  # the stalled one ends
        problems = verify(engine, sink, start_count, events)
    finally:
        services.stop("mailer")
    return Result(mode, measured, seconds, letters), problems


def verify(
    engine: sa.Engine, sink: MailCatcher, start: int, events: list[SignatureResolved]
) -> list[str]:
    time.sleep(0.5)  # room for a late duplicate
    got = [str(c.message["Message-ID"]).strip("<>") for c in sink.messages[start:]]
    expected = {f"{p}.{e.signature_id}@{MAIL_DOMAIN}" for e in events for p in ("letter", "copy")}
    problems = []
    if len(got) != len(set(got)):
        problems.append(f"{len(got) - len(set(got))} duplicate messages")
    if set(got) != expected:
        problems.append(
            f"{len(expected - set(got))} missing, {len(set(got) - expected)} unexpected"
        )
    ids = [e.signature_id for e in events]
    with engine.connect() as conn:
        not_sent = conn.execute(
            sa.text(
                "SELECT count(*) FROM letters WHERE signature_id = ANY(:ids) AND state <> 'sent'"
            ),
            {"ids": ids},
        ).scalar_one()
    if not_sent:
        problems.append(f"{not_sent} letters rows not 'sent'")
    return problems


# -- reporting ---------------------------------------------------------------------------------
def median(runs: list[Result], attr: str = "rate") -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def spread(runs: list[Result]) -> str:
    rates = [r.rate for r in runs]
    return f"{min(rates):,.0f}–{max(rates):,.0f}"


def print_rounds(by_mode: dict[str, list[Result]]) -> None:
    """Each round's own ratios (modes run interleaved, so a round shares its noisy moments)."""
    raws = by_mode.get("raw smtplib, 1 connection", [])
    ones = by_mode.get("50 ms sink, mailer 1 thread", [])
    for mode, runs in by_mode.items():
        if mode.startswith("mailer") and raws:
            shares = ", ".join(f"{r.rate / w.rate:.2f}" for r, w in zip(runs, raws, strict=True))
            print(f"round by round, {mode} ÷ raw: {shares}")
        elif mode.startswith("50 ms") and mode != "50 ms sink, mailer 1 thread" and ones:
            ratios = ", ".join(f"{r.rate / o.rate:.2f}×" for r, o in zip(runs, ones, strict=True))
            print(f"round by round, {mode} ÷ 1 thread: {ratios}")


def print_table(by_mode: dict[str, list[Result]], raw: float) -> None:
    print()
    print(
        "| mode | runs | letters | messages | letters/s (median) | messages/s (median) "
        "| spread (messages/s) | vs raw |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, runs in by_mode.items():
        letters = runs[0].letters or "–"
        letter_rate = f"{median(runs, 'letter_rate'):,.0f}" if runs[0].letters else "–"
        share = f"{median(runs) / raw:.0%}" if raw and not mode.startswith("50 ms") else "–"
        print(
            f"| {mode} | {len(runs)} | {letters} | {runs[0].messages} | {letter_rate} "
            f"| {median(runs):,.0f} | {spread(runs)} | {share} |"
        )
    print()


def main() -> int:
    topology = Topology(f"bench{uuid.uuid4().hex[:8]}")
    db_name = f"dearmp_bench_{uuid.uuid4().hex[:8]}"
    db_url = sa.make_url(PG_SERVER_URL).set(database=db_name).render_as_string(hide_password=False)
    settings = Settings(mail_domain=MAIL_DOMAIN, sandbox_to="sandbox@bench.invalid")
    print(
        f"Mailer benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}), load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"namespace {topology.namespace}, database {db_name}; {N} letters per fast run "
        f"(threads {THREADS}), raw {RAW_N} messages, 50 ms runs {SCALE_N1} letters × 1 thread "
        f"and {SCALE_N8} × 8 threads; {ROUNDS} rounds"
    )
    fast = MailCatcher().start()
    slow = MailCatcher(delay=0.05).start()
    env = {
        "DEARMP_DATABASE_URL": db_url,
        "DEARMP_AMQP_URL": AMQP_URL,
        "DEARMP_BROKER_NAMESPACE": topology.namespace,
        "DEARMP_SECRET_KEY": "bench-secret-key-0123456789",
        "DEARMP_MAIL_DOMAIN": MAIL_DOMAIN,
        "DEARMP_SANDBOX_TO": "sandbox@bench.invalid",
        "DEARMP_RETRY_DELAYS_MS": ",".join(map(str, RETRY_DELAYS)),
        "DEARMP_METRICS_PORT": "0",
        "DEARMP_LOG_LEVEL": "warning",
    }
    services = Services(env, topology)
    results: list[Result] = []
    problems: list[str] = []
    engine = None
    started = time.monotonic()
    try:
        declare_all(AMQP_URL, topology, RETRY_DELAYS)
        ensure_database(db_url)
        upgrade(db_url)
        engine = make_engine(db_url, pool_size=4)
        with engine.begin() as conn:
            for path in campaign_files(ROOT / "campaigns"):
                save_campaign(conn, read_campaign_file(path))
        services.start("relay")

        def run(
            sink: MailCatcher,
            threads: int,
            letters: int,
            mode: str,
            replicas: int = 1,
            stall: float = 0.0,
        ) -> None:
            result, found = bench_mailer(
                engine, services, sink, threads, letters, mode, replicas, stall
            )
            results.append(result)
            problems.extend(f"{mode}: {p}" for p in found)
            print(
                f"    {mode}: {result.letter_rate:,.1f} letters/s, {result.rate:,.1f} messages/s"
                f", verified {'OK' if not found else '; '.join(found)}",
                flush=True,
            )

        for round_no in range(1, ROUNDS + 1):
            print(f"round {round_no}/{ROUNDS}", flush=True)
            if MODES & {"throughput", "stalled"}:  # both are compared with raw smtplib
                result = bench_raw(fast, settings)
                results.append(result)
                print(f"    {result.mode}: {result.rate:,.0f} messages/s", flush=True)
            if "throughput" in MODES:
                for threads in THREADS:
                    run(fast, threads, N, f"mailer, {threads} thread{'s' if threads > 1 else ''}")
                run(fast, 2, N, "mailer, 2 processes × 2 threads", replicas=2)
            if "stalled" in MODES:
                run(fast, 8, N, STALLED_MODE, stall=STALL)
            if "scaling" not in MODES:
                continue
            run(slow, 1, SCALE_N1, "50 ms sink, mailer 1 thread")
            run(slow, 8, SCALE_N8, "50 ms sink, mailer 8 threads")
            run(slow, 4, SCALE_N8, "50 ms sink, 2 mailers × 4 threads", replicas=2)
    finally:
        services.stop_all()
        fast.stop()
        slow.stop()
        if engine is not None:
            engine.dispose()
        try:
            delete_all(AMQP_URL, topology, RETRY_DELAYS)
        except Exception as exc:  # report, still drop the database
            print(f"cleanup of namespace {topology.namespace} failed: {exc}")
        admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.dispose()

    by_mode: dict[str, list[Result]] = {}
    for r in results:
        by_mode.setdefault(r.mode, []).append(r)
    print(
        f"finished in {time.monotonic() - started:.0f}s, load average {os.getloadavg()[0]:.2f} "
        "(other work on the machine slows every mode: compare modes within one run)"
    )
    raws = by_mode.get("raw smtplib, 1 connection")
    raw = median(raws) if raws else 0.0
    print_table(by_mode, raw)
    print_rounds(by_mode)
    if raws:
        best = max(
            (mode for mode in by_mode if mode.startswith("mailer")),
            key=lambda m: median(by_mode[m]),
        )
        share = median(by_mode[best]) / raw
        print(
            f"throughput: {best}: {median(by_mode[best]):,.0f} messages/s "
            f"({median(by_mode[best], 'letter_rate'):,.0f} letters/s, each a letter and a copy) = "
            f"{share:.0%} of raw smtplib ({raw:,.0f}/s); "
            f"{'meets' if share >= TARGET_SHARE else 'BELOW'} the {TARGET_SHARE:.0%} target"
        )
    if raws and STALLED_MODE in by_mode:
        stalled = median(by_mode[STALLED_MODE])
        print(
            f"one connection stalled {STALL:.0f}s: the other senders {stalled:,.0f} messages/s = "
            f"{stalled / raw:.0%} of raw smtplib; "
            f"{'meets' if stalled / raw >= TARGET_SHARE else 'BELOW'} the {TARGET_SHARE:.0%} target"
        )
    if "50 ms sink, mailer 1 thread" in by_mode:
        one = median(by_mode["50 ms sink, mailer 1 thread"])
        eight = median(by_mode["50 ms sink, mailer 8 threads"])
        two = median(by_mode["50 ms sink, 2 mailers × 4 threads"])
        for label, rate in (("8 threads in one process", eight), ("2 processes × 4 threads", two)):
            print(
                f"scaling at 50 ms per message, {label}: {rate:,.1f} messages/s against "
                f"{one:,.1f} for 1 thread = {rate / one:.2f}×; "
                f"{'meets' if rate / one >= TARGET_SCALING else 'BELOW'} the "
                f"{TARGET_SCALING:.0f}× target"
            )
    if problems:
        print("CORRECTNESS FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        "correctness: after every mailer run the sink held every expected Message-ID exactly "
        "once and every letters row was 'sent'"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
