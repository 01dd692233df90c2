"""Fan-out benchmark: one update to 100,000 subscribers through the updates service process.

Run with ``make bench`` (or ``.venv/bin/python bench/fanout.py``). It talks only to the local
PostgreSQL, RabbitMQ and its own SMTP sink on 127.0.0.1; it creates its own database and broker
namespace and removes both at the end. Every wait is bounded.

In one run:

  raw       smtplib on one connection to the sink, sending a copy of the same size back to back:
            the ceiling for one SMTP connection to this sink. Measured before and after the
            fan-outs; the ratio is taken against the faster of the two.
  fan-out   ``dearmp serve relay`` and ``dearmp serve updates`` as real processes; the update is
            published with ``publish_update`` (the outbox event the staff pages and the CLI
            write). emails/s is timed at the sink, from its first copy to its last; the
            end-to-end time runs from the publish to the job being done. The updates process's
            peak RSS is VmHWM from /proc/<pid>/status, read just before it is stopped.
  kill      a second update; the updates process is SIGKILLed when half of it has reached the
            sink, its ``sending`` deliveries are read from the database, and it is started again.
            It must end with every subscriber's Message-ID at the sink, and any copy received
            twice must be one of those ``sending`` deliveries.

The sink (``shared.mailcatcher.MailCatcher`` with a handler that only counts Message-IDs, so
100,000 messages cost no memory) runs in its own process, so neither client shares its CPU time.

Environment (optional): BENCH_SUBSCRIBERS (default 100000), BENCH_RAW_N (messages per raw run,
default 20000, at most BENCH_SUBSCRIBERS), BENCH_TIME_LIMIT (seconds per fan-out, default 900).
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from services.intake.admin.publishing import publish_update  # noqa: E402
from services.updates.compose import Recipient, UpdateContent, UpdateMail  # noqa: E402
from services.updates.wire import WireFormat  # noqa: E402
from shared.broker.declare import declare_all, delete_all  # noqa: E402
from shared.campaigns import campaign_files, read_campaign_file, save_campaign  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import make_engine, upgrade  # noqa: E402
from shared.topology import Topology  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SLUG = "guardians-for-children"
N = int(os.environ.get("BENCH_SUBSCRIBERS", "100000"))
RAW_N = min(int(os.environ.get("BENCH_RAW_N", "20000")), N)
TIME_LIMIT = float(os.environ.get("BENCH_TIME_LIMIT", "900"))
RETRY_DELAYS = [1000, 5000]
RATIO_TARGET = 0.60
RSS_TARGET_MB = 150
SECRET = "bench-secret-key-0123456789"
BODY = (
    "Thank you to everyone who wrote to their MP this month. **312 MPs** have now had a letter, "
    "and 41 of them have replied.\n\n"
    "This week we met the minister's officials and handed over the letters. They promised a "
    "written answer before the summer recess, and we will share it here.\n\n"
    "- Read the [briefing we left with them](https://example.org/briefing)\n"
    "- Ask a friend to sign: every letter counts\n"
)

# -- the sink (its own process) ----------------------------------------------------------------
_MID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.I | re.M)


class CountingHandler:
    """Counts Message-IDs; keeps nothing else. Update copies and raw messages separately."""

    def __init__(self) -> None:
        self.updates: Counter[bytes] = Counter()
        self.raw = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        found = _MID.search(envelope.content or b"")
        mid = found.group(1) if found else b"?"
        if mid.startswith(b"<update."):
            now = time.monotonic()
            self.first = self.first or now
            self.last = now
            self.updates[mid] += 1
        else:
            self.raw += 1
        return "250 OK"


def run_sink(port: int, state: Path) -> None:
    from shared.mailcatcher import MailCatcher

    catcher = MailCatcher(port=port)
    handler = CountingHandler()
    catcher.handler = handler  # type: ignore[assignment]
    catcher.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dump = state.with_suffix(".dump")
    while not stop.wait(0.25):
        summary = {
            "raw": handler.raw,
            "updates": sum(handler.updates.values()),
            "first": handler.first,
            "last": handler.last,
        }
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary))
        tmp.replace(state)
        if dump.exists():  # asked for every Message-ID and its count
            dump.unlink()
            full = {k.decode(): v for k, v in handler.updates.items()}
            out = state.with_suffix(".ids")
            out.with_suffix(".tmp2").write_text(json.dumps(full))
            out.with_suffix(".tmp2").replace(out)
    catcher.stop()


class Sink:
    def __init__(self, workdir: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.state = workdir / "sink.json"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(self.port), str(self.state)], cwd=ROOT
        )
        wait(lambda: self.state.exists(), 30, "the sink to start")

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def read(self) -> dict[str, Any]:
        for _ in range(20):
            try:
                return dict(json.loads(self.state.read_text()))
            except (json.JSONDecodeError, FileNotFoundError):
                time.sleep(0.05)
        raise RuntimeError("cannot read the sink's state")

    def message_ids(self) -> Counter[str]:
        ids = self.state.with_suffix(".ids")
        ids.unlink(missing_ok=True)
        self.state.with_suffix(".dump").write_text("")
        wait(ids.exists, 60, "the sink's Message-IDs")
        return Counter(json.loads(ids.read_text()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


# -- helpers -----------------------------------------------------------------------------------
def wait(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Service:
    def __init__(self, name: str, env: dict[str, str], workdir: Path):
        self.name, self.env = name, env
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.ops.cli", "serve", self.name],
                env={**os.environ, **self.env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def sample_copy(settings: Settings) -> bytes:
    content = UpdateContent(SLUG, "Give every child a guardian", 1, "We met the minister", BODY)
    mail = UpdateMail(content, settings)
    who = Recipient(1, uuid.uuid4(), "subscriber-0000001@example.org", "Alex")
    data = WireFormat(mail).render(who.email, mail.copy_for(who), who.email)
    assert data is not None
    return data.replace(b"<update.", b"<raw.", 1)


def raw_rate(sink: Sink, data: bytes, count: int) -> float:
    before = sink.read()["raw"]
    smtp = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    started = time.perf_counter()
    for _ in range(count):
        smtp.sendmail("updates@dearmp.invalid", ["sandbox@dearmp.invalid"], data)
    seconds = time.perf_counter() - started
    smtp.quit()
    wait(lambda: sink.read()["raw"] >= before + count, 30, "the raw messages")
    return count / seconds


def add_subscribers(engine: sa.Engine, count: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("""
            INSERT INTO subscribers (campaign, signature_id, email, email_normalised, first_name,
                                     created_at)
            SELECT :slug, gen_random_uuid(), 'subscriber-' || lpad(g::text, 7, '0') || '@example.org',
                   'subscriber-' || lpad(g::text, 7, '0') || '@example.org', 'Alex', now()
            FROM generate_series(1, :n) g
            """),
            {"slug": SLUG, "n": count},
        )
        conn.exec_driver_sql("ANALYZE subscribers")


def expected_ids(engine: sa.Engine, number: int) -> set[str]:
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT signature_id FROM subscribers")).scalars()
        return {f"<update.{SLUG}.{number}.{sid}@dearmp.invalid>" for sid in ids}


def job(engine: sa.Engine, number: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM fanout_jobs WHERE campaign = :c AND update_number = :n"),
            {"c": SLUG, "n": number},
        ).first()


def publish(engine: sa.Engine, title: str) -> tuple[int, float]:
    with engine.begin() as conn:
        number = publish_update(conn, SLUG, title, BODY, email_subscribers=True)
    return number, time.monotonic()


def done(engine: sa.Engine, number: int) -> Any:
    row = job(engine, number)
    return row if row is not None and row.status == "done" else None


# -- the runs ----------------------------------------------------------------------------------
def fanout_run(engine: sa.Engine, sink: Sink, updates: Service) -> dict[str, Any]:
    before = sink.read()["updates"]
    number, published = publish(engine, "We met the minister")
    peak = 0.0

    def finished() -> Any:
        nonlocal peak
        peak = max(peak, peak_rss_mb(updates.pid))
        return done(engine, number)

    row = wait(finished, TIME_LIMIT, "the fan-out", interval=0.5)
    end_to_end = time.monotonic() - published
    wait(lambda: sink.read()["updates"] >= before + N, 60, "every copy at the sink")
    state = sink.read()
    peak = max(peak, peak_rss_mb(updates.pid))
    rate = (N - 1) / (state["last"] - state["first"])
    counts = sink.message_ids()
    expected = expected_ids(engine, number)
    got = {k: v for k, v in counts.items() if k in expected}
    return {
        "rate": rate,
        "end_to_end": end_to_end,
        "peak_rss_mb": peak,
        "sent": row.sent,
        "exactly_once": set(got) == expected and all(v == 1 for v in got.values()),
    }


def kill_run(engine: sa.Engine, sink: Sink, updates: Service) -> dict[str, Any]:
    number, _ = publish(engine, "The debate is on Tuesday")
    prefix = f"<update.{SLUG}.{number}."
    base = sink.read()["updates"]
    wait(lambda: sink.read()["updates"] - base >= N // 2, TIME_LIMIT, "half of the copies")
    updates.kill()
    at_kill = sink.read()["updates"] - base
    with engine.connect() as conn:
        sending = {
            f"{prefix}{sid}@dearmp.invalid>"
            for sid in conn.execute(
                sa.text("""
                SELECT s.signature_id FROM update_deliveries d
                JOIN subscribers s ON s.id = d.subscriber_id
                JOIN fanout_jobs j ON j.id = d.job_id
                WHERE j.update_number = :n AND d.state = 'sending'
                """),
                {"n": number},
            ).scalars()
        }
    updates.start()
    row = wait(lambda: done(engine, number), TIME_LIMIT, "the fan-out after the restart", 0.5)
    counts = sink.message_ids()
    expected = expected_ids(engine, number)
    got = {k: v for k, v in counts.items() if k.startswith(prefix)}
    twice = {k for k, v in got.items() if v > 1}
    return {
        "at_kill": at_kill,
        "sending_at_kill": len(sending),
        "received_twice": len(twice),
        "all_received": set(got) == expected,
        "duplicates_explained": twice <= sending and max(got.values()) <= 2,
        "possible_duplicates": row.possible_duplicates,
        "sent": row.sent,
    }


def main() -> int:
    run_id = uuid.uuid4().hex[:8]
    workdir = ROOT / "var" / f"bench-fanout-{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    db_name = f"dearmp_bench_fanout_{run_id}"
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db_name}"')
    db_url = PG_SERVER_URL.rsplit("/", 1)[0] + f"/{db_name}"
    namespace = f"benchfo{run_id}"
    topology = Topology(namespace)
    sink = Sink(workdir)
    services: list[Service] = []
    try:
        upgrade(db_url)
        engine = make_engine(db_url)
        with engine.begin() as conn:
            for path in campaign_files(ROOT / "campaigns"):
                save_campaign(conn, read_campaign_file(path))
        started = time.monotonic()
        add_subscribers(engine, N)
        print(f"{N:,} subscribers written in {time.monotonic() - started:.1f}s", flush=True)
        declare_all(AMQP_URL, topology, RETRY_DELAYS)
        settings = Settings(secret_key=SECRET)
        env = {
            "DEARMP_DATABASE_URL": db_url,
            "DEARMP_AMQP_URL": AMQP_URL,
            "DEARMP_BROKER_NAMESPACE": namespace,
            "DEARMP_SMTP_URL": sink.url,
            "DEARMP_SECRET_KEY": SECRET,
            "DEARMP_RETRY_DELAYS_MS": ",".join(map(str, RETRY_DELAYS)),
            "DEARMP_METRICS_PORT": "0",
            "DEARMP_LOG_LEVEL": "info",
            "DEARMP_FANOUT_SWEEP_SECONDS": "0.2",
        }
        relay = Service("relay", env, workdir).start()
        updates = Service("updates", env, workdir).start()
        services += [relay, updates]
        copy = sample_copy(settings)
        print(
            f"copy size {len(copy):,} bytes; raw smtplib → sink ({RAW_N:,} messages) …", flush=True
        )
        raw_before = raw_rate(sink, copy, RAW_N)
        print(f"raw before: {raw_before:,.0f} msg/s; fan-out of {N:,} …", flush=True)
        clean = fanout_run(engine, sink, updates)
        print(f"fan-out: {clean['rate']:,.0f} emails/s; kill run …", flush=True)
        killed = kill_run(engine, sink, updates)
        raw_after = raw_rate(sink, copy, RAW_N)
        rss_after_kill_run = peak_rss_mb(updates.pid)
        raw = max(raw_before, raw_after)
        ratio = clean["rate"] / raw
        report(raw_before, raw_after, ratio, clean, killed, rss_after_kill_run)
        ok = (
            clean["exactly_once"]
            and killed["all_received"]
            and killed["duplicates_explained"]
            and killed["possible_duplicates"] == killed["sending_at_kill"]
        )
        return 0 if ok else 1
    finally:
        for svc in reversed(services):
            svc.stop()
        sink.stop()
        try:
            delete_all(AMQP_URL, topology, RETRY_DELAYS)
        except Exception as exc:  # the broker may be gone; names are unique anyway
            print(f"(could not remove broker namespace {namespace}: {exc})")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.dispose()


def report(
    raw_before: float,
    raw_after: float,
    ratio: float,
    clean: dict[str, Any],
    killed: dict[str, Any],
    rss_after_kill_run: float,
) -> None:
    load = os.getloadavg()
    print()
    print(f"Fan-out benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, load {load[0]:.1f}")
    print(f"subscribers                         {N:,}")
    print(f"raw smtplib → sink, before / after  {raw_before:,.0f} / {raw_after:,.0f} msg/s")
    print(
        f"fan-out through `serve updates`     {clean['rate']:,.0f} emails/s "
        f"= {ratio:.3f} × raw (target ≥ {RATIO_TARGET:.2f}: "
        f"{'met' if ratio >= RATIO_TARGET else 'NOT met'})"
    )
    print(f"publish → job done                  {clean['end_to_end']:.1f} s")
    print(
        f"updates process peak RSS (VmHWM)    {clean['peak_rss_mb']:.0f} MB (target ≤ "
        f"{RSS_TARGET_MB}: {'met' if clean['peak_rss_mb'] <= RSS_TARGET_MB else 'NOT met'}); "
        f"after the restarted run {rss_after_kill_run:.0f} MB"
    )
    print(f"every subscriber exactly once       {clean['exactly_once']}")
    print(
        f"kill run: SIGKILL after {killed['at_kill']:,} copies; 'sending' at the kill "
        f"{killed['sending_at_kill']}; received twice {killed['received_twice']}; "
        f"everyone received {killed['all_received']}; duplicates explained by 'sending' rows "
        f"{killed['duplicates_explained']}; job possible_duplicates "
        f"{killed['possible_duplicates']}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--sink":
        run_sink(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(main())
