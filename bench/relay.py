"""Relay benchmark: how fast do outbox rows reach RabbitMQ, next to what raw pika can do?

Run with ``make bench`` (or ``.venv/bin/python bench/relay.py``). It talks only to the local
PostgreSQL and RabbitMQ on 127.0.0.1, creates its own database and broker namespace and removes
both at the end. Every mode is bounded in count and in time.

Modes, all publishing persistent messages with ``mandatory`` to the namespace's topic exchange,
routed to a durable quorum queue (the same kind of queue the services use):

  (a) raw pika BlockingChannel in confirm mode: one publish, one confirm round trip;
  (b) raw pika SelectConnection, batches of 500, then wait for every confirm;
  (b') shared.broker.publisher.ConfirmingPublisher.publish_batch, batches of 500;
  (c) shared.outbox.Relay draining N outbox rows written with shared.outbox.add_many
      (SignatureReceived envelopes), with 1 relay and then 2 relays in threads (SKIP LOCKED),
      on a fresh table; then 1 relay again with HISTORY already-sent rows in the table, as in
      a live system where sent rows are never pruned.

Modes run in ROUNDS rounds, interleaved, and the table reports the median and the spread.
Correctness is checked after each relay run: every outbox row is marked sent and the bound
queue holds exactly N messages (nothing lost, nothing left unrouted).

Environment (optional): BENCH_N (outbox rows per relay run, default 50000), BENCH_BATCH (relay
batch size, default the service default), BENCH_RAW_N (messages for mode b, default 50000),
BENCH_SINGLE_N (messages for mode a, default 3000), BENCH_HISTORY (already-sent rows in the
table for the last relay runs, default 200000, 0 to skip), BENCH_ROUNDS (default 3),
BENCH_TIME_LIMIT (seconds per run, 180).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from pika.adapters.blocking_connection import BlockingChannel  # noqa: E402
from pika.adapters.select_connection import SelectConnection  # noqa: E402
from pika.spec import BasicProperties  # noqa: E402

from shared import messages as m  # noqa: E402
from shared.broker.declare import connection_parameters, declare_all, delete_all  # noqa: E402
from shared.broker.publisher import ConfirmingPublisher, Message  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import ensure_database, make_engine, upgrade  # noqa: E402
from shared.outbox import Relay, add_many, backlog, outbox  # noqa: E402
from shared.topology import BINDINGS, Topology  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

N = int(os.environ.get("BENCH_N", "50000"))
DEFAULT_BATCH = Settings.model_fields["relay_batch_size"].default  # what `serve relay` uses
RELAY_BATCH = int(os.environ.get("BENCH_BATCH", str(DEFAULT_BATCH)))
RAW_N = int(os.environ.get("BENCH_RAW_N", "50000"))
SINGLE_N = int(os.environ.get("BENCH_SINGLE_N", "3000"))
TIME_LIMIT = float(os.environ.get("BENCH_TIME_LIMIT", "180"))
HISTORY = int(os.environ.get("BENCH_HISTORY", "200000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = 5000  # events/s relayed, on the 2-core development machine
RAW_BATCH = 500
INSERT_CHUNK = 5000
RETRY_DELAYS = [1000, 5000]
RAW_KEY = "bench.raw"  # routed only to the benchmark's own raw queue


@dataclass
class Result:
    mode: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


# -- workload ----------------------------------------------------------------------------------
def make_event(i: int) -> tuple[m.Event, str]:
    """A SignatureReceived of ordinary size (a supporter with an address and a short comment)."""
    signature_id = uuid.uuid4()
    event = m.SignatureReceived(
        signature_id=signature_id,
        campaign="guardians-for-children",
        supporter=m.Supporter(
            first_name="Jo",
            last_name=f"Bloggs-{i}",
            email=f"supporter-{i:07d}@example.org",
            postcode="GU11 1AA",
            address_lines=[f"{i % 200 + 1} Test Street", "Aldershot"],
            comment="Every child trafficked into the UK deserves a guardian who is on their side.",
            opt_in=i % 3 == 0,
        ),
    )
    return event, str(signature_id)


def sample_body() -> bytes:
    event, correlation_id = make_event(0)
    return m.Envelope.wrap(event, correlation_id=correlation_id).to_json()


# -- broker helpers ----------------------------------------------------------------------------
def blocking_channel(name: str) -> tuple[pika.BlockingConnection, BlockingChannel]:
    conn = pika.BlockingConnection(connection_parameters(AMQP_URL, name=name))
    return conn, conn.channel()


def declare_raw_queue(topology: Topology) -> str:
    name = f"{topology.namespace}.bench.raw"
    conn, ch = blocking_channel("bench-declare")
    try:
        ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind(name, topology.events_exchange, routing_key=RAW_KEY)
    finally:
        conn.close()
    return name


def queue_depth(name: str) -> int:
    conn, ch = blocking_channel("bench-count")
    try:
        return int(ch.queue_declare(name, passive=True).method.message_count)
    finally:
        conn.close()


def settled_depth(name: str, expected: int, timeout: float = 10) -> int:
    """The queue's depth once it stops moving (quorum queue counters can trail by a moment)."""
    deadline = time.monotonic() + timeout
    depth = queue_depth(name)
    while depth != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        depth = queue_depth(name)
    return depth


def purge(name: str) -> None:
    conn, ch = blocking_channel("bench-purge")
    try:
        ch.queue_purge(name)
    finally:
        conn.close()


# -- (a) one confirm per message ---------------------------------------------------------------
def bench_single_confirms(topology: Topology, body: bytes) -> Result:
    conn, ch = blocking_channel("bench-single")
    ch.confirm_delivery()
    props = BasicProperties(content_type="application/json", delivery_mode=2)
    sent = 0
    started = time.perf_counter()
    deadline = started + min(TIME_LIMIT, 60)
    try:
        while sent < SINGLE_N and time.perf_counter() < deadline:
            # raises UnroutableError / NackError if the broker does not take it
            ch.basic_publish(topology.events_exchange, RAW_KEY, body, props, mandatory=True)
            sent += 1
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return Result("(a) pika BlockingChannel, confirm per message", sent, elapsed)


# -- (b) raw pika, batches of 500 --------------------------------------------------------------
class RawBatchPublisher:
    """The least code that publishes a batch with confirms + mandatory and waits once."""

    def __init__(self, exchange: str):
        self.exchange = exchange
        self.acked = 0
        self.last = 0
        self.bad = 0
        self.channel = None
        self.conn = SelectConnection(
            connection_parameters(AMQP_URL, name="bench-raw-batch"),
            on_open_callback=lambda c: c.channel(on_open_callback=self._on_channel),
            on_open_error_callback=self._on_closed,
            on_close_callback=self._on_closed,
        )
        self.conn.ioloop.start()
        if self.channel is None:
            raise RuntimeError("cannot open the raw publisher")

    def _on_closed(self, *_args: object) -> None:
        self.conn.ioloop.stop()

    def _on_channel(self, ch) -> None:  # type: ignore[no-untyped-def]
        ch.add_on_return_callback(self._on_return)
        ch.confirm_delivery(self._on_confirm, callback=lambda _f: self._ready(ch))

    def _ready(self, ch) -> None:  # type: ignore[no-untyped-def]
        self.channel = ch
        self.conn.ioloop.stop()

    def _on_return(self, *_args: object) -> None:
        self.bad += 1

    def _on_confirm(self, frame) -> None:  # type: ignore[no-untyped-def]
        method = frame.method
        if method.NAME != "Basic.Ack":
            self.bad += 1
        self.acked = max(self.acked, method.delivery_tag)
        if self.acked >= self.last:
            self.conn.ioloop.stop()

    def publish(self, key: str, bodies: list[bytes], props: BasicProperties) -> None:
        for body in bodies:
            self.channel.basic_publish(self.exchange, key, body, props, mandatory=True)
        self.last += len(bodies)
        deadline = time.monotonic() + 30
        timer = self.conn.ioloop.call_later(30, self.conn.ioloop.stop)
        while self.acked < self.last:
            self.conn.ioloop.start()
            if self.acked < self.last and (not self.conn.is_open or time.monotonic() > deadline):
                raise RuntimeError("raw publisher: connection closed or confirms timed out")
        self.conn.ioloop.remove_timeout(timer)

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()
            self.conn.ioloop.start()  # until _on_closed


def bench_raw_batches(topology: Topology, body: bytes) -> Result:
    pub = RawBatchPublisher(topology.events_exchange)
    props = BasicProperties(content_type="application/json", delivery_mode=2)
    bodies = [body] * RAW_BATCH
    sent = 0
    started = time.perf_counter()
    deadline = started + TIME_LIMIT
    try:
        while sent < RAW_N and time.perf_counter() < deadline:
            pub.publish(RAW_KEY, bodies, props)
            sent += RAW_BATCH
        elapsed = time.perf_counter() - started
    finally:
        pub.close()
    if pub.bad:
        raise RuntimeError(f"raw batch: {pub.bad} messages nacked or returned")
    return Result(f"(b) pika SelectConnection, batches of {RAW_BATCH}", sent, elapsed)


def bench_confirming_publisher(topology: Topology, body: bytes) -> Result:
    pub = ConfirmingPublisher(AMQP_URL, topology.events_exchange)
    sent = 0
    started = time.perf_counter()
    deadline = started + TIME_LIMIT
    try:
        while sent < RAW_N and time.perf_counter() < deadline:
            batch = [
                Message(routing_key=RAW_KEY, body=body, message_id=str(uuid.uuid4()))
                for _ in range(RAW_BATCH)
            ]
            outcomes = pub.publish_batch(batch)
            if any(o.value != "confirmed" for o in outcomes):
                raise RuntimeError("ConfirmingPublisher: a message was not confirmed")
            sent += RAW_BATCH
        elapsed = time.perf_counter() - started
    finally:
        pub.close()
    return Result(f"(b') ConfirmingPublisher.publish_batch, {RAW_BATCH}", sent, elapsed)


# -- (c) outbox -> broker ----------------------------------------------------------------------
def fill_outbox(engine: sa.Engine, n: int) -> Result:
    started = time.perf_counter()
    for start in range(0, n, INSERT_CHUNK):
        events = [make_event(i) for i in range(start, min(n, start + INSERT_CHUNK))]
        with engine.begin() as conn:
            add_many(conn, events)
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE outbox")
    return Result("(setup) outbox.add_many, 5,000 rows per transaction", n, elapsed, "setup")


def add_history(engine: sa.Engine, n: int) -> None:
    """``n`` rows already sent, as a live outbox accumulates (nothing prunes sent rows)."""
    body = sample_body()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at,"
            " available_at, sent_at, attempts)"
            " SELECT gen_random_uuid(), 'signature.received', gen_random_uuid()::text, %(body)s,"
            " now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', 0"
            " FROM generate_series(1, %(n)s)",
            {"body": body, "n": n},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE outbox")  # as autovacuum would have by now


def bench_relay(
    engine: sa.Engine, topology: Topology, relays: int, n: int, history: int = 0
) -> Result:
    publishers = [ConfirmingPublisher(AMQP_URL, topology.events_exchange) for _ in range(relays)]
    for p in publishers:
        p.connect()  # connection set-up is not part of the rate
    workers = [Relay(engine, p, batch_size=RELAY_BATCH) for p in publishers]
    stopping = threading.Event()
    threads = [
        threading.Thread(target=w.run, args=(stopping, 0.01), daemon=True, name=f"bench-relay-{i}")
        for i, w in enumerate(workers)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    deadline = started + TIME_LIMIT
    remaining = n
    try:
        while time.perf_counter() < deadline:
            with engine.connect() as conn:
                remaining = backlog(conn)
            if remaining == 0:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        stopping.set()
        for t in threads:
            t.join(timeout=30)
        for p in publishers:
            p.close()
    if remaining:
        print(f"  ! relay x{relays}: {remaining} rows still unsent after {TIME_LIMIT:.0f}s")
    label = "relay" if relays == 1 else "relays in threads"
    mode = f"(c) outbox -> broker, {relays} {label}, batch {RELAY_BATCH}"
    if history:
        mode += f", +{history // 1000}k sent rows"
    return Result(mode, n - remaining, elapsed)


def verify(engine: sa.Engine, queue: str, n: int, history: int = 0) -> list[str]:
    problems = []
    with engine.connect() as conn:
        unsent = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ).scalar_one()
        total = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
        errors = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.last_error.is_not(None))
        ).scalar_one()
    if total != n + history:
        problems.append(f"outbox holds {total} rows, expected {n + history}")
    if unsent:
        problems.append(f"{unsent} outbox rows not marked sent")
    if errors:
        problems.append(f"{errors} outbox rows carry an error")
    depth = settled_depth(queue, n)
    if depth != n:
        problems.append(f"queue {queue} holds {depth} messages, expected {n}")
    return problems


def clear_outbox(engine: sa.Engine, history: int) -> None:
    """Delete the run's rows (keep the already-sent history rows) and vacuum."""
    with engine.begin() as conn:
        if history:
            conn.exec_driver_sql("DELETE FROM outbox WHERE created_at > now() - interval '1 hour'")
        else:
            conn.execute(outbox.delete())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE outbox")


# -- report ------------------------------------------------------------------------------------
def summarise(results: list[Result]) -> dict[str, list[Result]]:
    by_mode: dict[str, list[Result]] = {}
    for r in results:
        by_mode.setdefault(r.mode, []).append(r)
    return by_mode


def median_rate(runs: list[Result]) -> float:
    return statistics.median(r.rate for r in runs)


def print_table(by_mode: dict[str, list[Result]], raw: float, publisher: float) -> None:
    w = max(len(mode) for mode in by_mode)
    print()
    print(f"| {'mode':<{w}} | msgs/run | runs | median msg/s | min - max msg/s | / (b) | / (b') |")
    print(f"|{'-' * (w + 2)}|---------:|-----:|-------------:|----------------:|------:|-------:|")
    for mode, runs in by_mode.items():
        rate = median_rate(runs)
        spread = f"{min(r.rate for r in runs):,.0f} - {max(r.rate for r in runs):,.0f}"
        ratios = ("", "") if runs[0].note else (f"{rate / raw:.2f}", f"{rate / publisher:.2f}")
        print(
            f"| {mode:<{w}} | {runs[0].count:>8} | {len(runs):>4} | {rate:>12,.0f} "
            f"| {spread:>15} | {ratios[0]:>5} | {ratios[1]:>6} |"
        )
    print()


def main() -> int:
    topology = Topology(f"bench{uuid.uuid4().hex[:8]}")
    db_name = f"dearmp_bench_{uuid.uuid4().hex[:8]}"
    db_url = sa.make_url(PG_SERVER_URL).set(database=db_name).render_as_string(hide_password=False)
    body = sample_body()
    print(
        f"Relay benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, pika {pika.__version__})"
    )
    print(
        f"namespace {topology.namespace}, database {db_name}; N={N}, relay batch {RELAY_BATCH}, "
        f"envelope {len(body)} bytes (SignatureReceived), {ROUNDS} rounds"
    )

    results: list[Result] = []
    problems: list[str] = []
    engine = None
    started = time.monotonic()
    try:
        declare_all(AMQP_URL, topology, RETRY_DELAYS)
        raw_queue = declare_raw_queue(topology)
        # SignatureReceived is bound to exactly one service queue: count what lands there.
        bound = [s for s, keys in BINDINGS.items() if m.SignatureReceived.TYPE in keys]
        assert len(bound) == 1, bound
        target_queue = topology.queue(bound[0])
        ensure_database(db_url)
        upgrade(db_url)
        engine = make_engine(db_url, pool_size=4)

        def relay_run(relays: int, history: int) -> None:
            results.append(fill_outbox(engine, N))
            result = bench_relay(engine, topology, relays, N, history)
            results.append(result)
            found = verify(engine, target_queue, N, history)
            problems.extend(f"{result.mode}: {p}" for p in found)
            print(
                f"    {result.mode}: {result.rate:,.0f}/s, verified "
                f"{'OK' if not found else '; '.join(found)}",
                flush=True,
            )
            purge(target_queue)
            clear_outbox(engine, history)

        # Modes interleaved round by round, so a noisy moment on a shared machine hits them all.
        for round_no in range(1, ROUNDS + 1):
            print(f"round {round_no}/{ROUNDS}", flush=True)
            for bench in (bench_single_confirms, bench_raw_batches, bench_confirming_publisher):
                result = bench(topology, body)
                results.append(result)
                print(f"    {result.mode}: {result.rate:,.0f}/s", flush=True)
                purge(raw_queue)
            relay_run(1, 0)  # fresh table
            relay_run(2, 0)
        # A live outbox is never pruned: the same relay again with HISTORY already-sent rows.
        if HISTORY:
            print(f"adding {HISTORY} already-sent rows", flush=True)
            add_history(engine, HISTORY)
            for round_no in range(1, ROUNDS + 1):
                print(f"history round {round_no}/{ROUNDS}", flush=True)
                relay_run(1, HISTORY)
    finally:
        if engine is not None:
            engine.dispose()
        try:
            conn, ch = blocking_channel("bench-cleanup")
            ch.queue_delete(f"{topology.namespace}.bench.raw")
            conn.close()
            delete_all(AMQP_URL, topology, RETRY_DELAYS)
        except Exception as exc:  # report, still drop the database
            print(f"cleanup of namespace {topology.namespace} failed: {exc}")
        admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.dispose()

    by_mode = summarise(results)
    raw = median_rate(next(runs for mode, runs in by_mode.items() if mode.startswith("(b)")))
    publisher = median_rate(next(runs for mode, runs in by_mode.items() if mode.startswith("(b')")))
    print(f"finished in {time.monotonic() - started:.0f}s")
    print_table(by_mode, raw, publisher)
    for mode, runs in by_mode.items():
        if mode.startswith("(c)"):
            rate = median_rate(runs)
            verdict = "meets" if rate >= TARGET else "BELOW"
            print(
                f"{mode}: {rate:,.0f} events/s (median), {rate / raw:.0%} of raw batched (b); "
                f"{verdict} the {TARGET:,} events/s target"
            )
    if problems:
        print("CORRECTNESS FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        f"correctness: after every relay run, every outbox row was marked sent, none carried "
        f"an error, and {target_queue} held exactly {N} messages"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
