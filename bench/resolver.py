"""Resolver benchmark: ONSPD import, local look-ups per second, and 1,000 confirmed signatures
resolved end to end through the broker — each beside a raw baseline measured in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/resolver.py``). It talks only to the local
PostgreSQL and RabbitMQ on 127.0.0.1, uses its own database and broker namespace, and removes
both at the end.

  1. Import: writes an ONSPD-format CSV of BENCH_ROWS rows (default 2,700,000; ~50 columns like
     the real file) to var/bench/onspd.csv once, then times ``dearmp data import-onspd`` as a
     child process and reports its peak RSS. Baseline: ``COPY`` of the same number of
     pre-formatted rows straight into a table (what Postgres alone needs).
  2. Look-ups: LocalBackend.lookup on BENCH_LOOKUPS random postcodes (default 20,000), one thread,
     beside a raw psycopg prepared point SELECT on the same postcodes.
  3. End to end: 1,000 signature.confirmed events in the outbox; `dearmp serve relay` and
     `dearmp serve resolver` as real processes; time until 1,000 resolutions are committed.
"""

from __future__ import annotations

import csv
import os
import random
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from services.resolver.lookup import LocalBackend  # noqa: E402
from shared import outbox  # noqa: E402
from shared.broker.declare import declare_all, delete_all  # noqa: E402
from shared.campaigns import campaign_files, read_campaign_file, save_campaign  # noqa: E402
from shared.db import ensure_database, make_engine, upgrade  # noqa: E402
from shared.messages import SignatureConfirmed, Supporter  # noqa: E402
from shared.topology import Topology  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DB_NAME = "dearmp_bench_resolver"
DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
ROWS = int(os.environ.get("BENCH_ROWS", 2_700_000))
LOOKUPS = int(os.environ.get("BENCH_LOOKUPS", 20_000))
E2E = int(os.environ.get("BENCH_E2E", 1000))
CSV_PATH = ROOT / "var" / "bench" / f"onspd-{ROWS}.csv"
EXTRA_COLUMNS = [f"col{i}" for i in range(40)]
HEADER = [
    "pcd",
    "pcd7",
    "pcd8",
    "pcds",
    "dointr",
    "doterm",
    "usertype",
    "oseast1m",
    "osnrth1m",
    "osgrdind",
    "oa21cd",
    "cty",
    "ced",
    "laua",
    "ward",
    "pcon24cd",
    "lat",
    "long",
    *EXTRA_COLUMNS,
]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def postcode_for(i: int) -> str:
    """A distinct, well-formed postcode for each i (outward AA9 / AA99, inward 9AA)."""
    letters = string.ascii_uppercase
    area = letters[i % 26] + letters[(i // 26) % 26]
    district = (i // 676) % 99 + 1
    sector = (i // 66924) % 10
    unit = INWARD_LETTERS[(i // 669240) % 20] + INWARD_LETTERS[i % 20]
    return f"{area}{district} {sector}{unit}"


def write_csv(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    started = time.perf_counter()
    with path.open("w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        writer.writerow(HEADER)
        filler = ["E00000000"] * len(EXTRA_COLUMNS)
        i = 0
        written = 0
        while written < rows:
            code = postcode_for(i)
            i += 1
            if code in seen:
                continue
            seen.add(code)
            pcon = f"E140{(written % 650):05d}"
            doterm = "202301" if written % 20 == 0 else ""
            writer.writerow(
                [
                    code.replace(" ", ""),
                    code,
                    code,
                    code,
                    "198001",
                    doterm,
                    "0",
                    "530000",
                    "180000",
                    "1",
                    "E00000001",
                    "E99999999",
                    "E99999999",
                    "E07000001",
                    "E05000001",
                    pcon,
                    "51.5",
                    "-0.1",
                    *filler,
                ]
            )
            written += 1
    print(
        f"  wrote {rows:,} rows ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - started:.0f} s"
    )


def bench_import() -> None:
    if not CSV_PATH.exists():
        write_csv(CSV_PATH, ROWS)
    env = {**os.environ, "DEARMP_DATABASE_URL": DB_URL}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "data", "import-onspd", str(CSV_PATH), "-q"],
        env=env,
        cwd=ROOT,
    )
    # Peak RSS of the import itself: VmHWM from /proc (getrusage would also count the memory of
    # this process copied into the child by fork, before exec).
    peak_kb = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"import-onspd failed with exit code {proc.returncode}")
    elapsed = time.perf_counter() - started
    peak_mb = peak_kb / 1024
    # Baseline: Postgres COPY of the same rows, already formatted (no CSV parsing, no swap).
    with psycopg.connect(DB_URL.replace("+psycopg", "")) as conn:
        conn.execute("CREATE TEMP TABLE raw_copy (postcode varchar(8), c varchar(9), t varchar(6))")
        block = "".join(
            f"{postcode_for(i)}\tE1400{i % 650:04d}\t\\N\n" for i in range(100_000)
        ).encode()
        started = time.perf_counter()
        with conn.cursor().copy("COPY raw_copy FROM STDIN") as copy:
            for _ in range(ROWS // 100_000):
                copy.write(block)
        raw = time.perf_counter() - started
    print(
        f"  import-onspd: {ROWS:,} rows in {elapsed:.1f} s ({ROWS / elapsed:,.0f} rows/s), "
        f"peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"  raw COPY baseline: {ROWS:,} rows in {raw:.1f} s ({ROWS / raw:,.0f} rows/s); "
        f"import/raw time ratio {elapsed / raw:.1f}x"
    )


def bench_lookups(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        sample = [
            r[0]
            for r in conn.execute(
                sa.text(f"SELECT postcode FROM postcodes TABLESAMPLE SYSTEM (1) LIMIT {LOOKUPS}")
            )
        ]
    random.shuffle(sample)
    backend = LocalBackend(engine)
    for code in sample[:500]:
        backend.lookup(code)  # warm up
    started = time.perf_counter()
    found = sum(1 for code in sample if backend.lookup(code) is not None)
    local = len(sample) / (time.perf_counter() - started)
    with psycopg.connect(DB_URL.replace("+psycopg", "")) as conn:
        started = time.perf_counter()
        for code in sample:
            conn.execute(
                "SELECT constituency_code, terminated FROM postcodes WHERE postcode = %s",
                (code,),
                prepare=True,
            ).fetchone()
        raw = len(sample) / (time.perf_counter() - started)
    print(
        f"  LocalBackend.lookup: {local:,.0f}/s over {len(sample):,} postcodes ({found:,} answered)"
    )
    print(f"  raw psycopg prepared point SELECT: {raw:,.0f}/s; ratio {local / raw:.0%}")


def bench_end_to_end(engine: sa.Engine) -> None:
    namespace = f"benchres{uuid.uuid4().hex[:6]}"
    delays = [200, 1000]
    declare_all(AMQP_URL, Topology(namespace), delays)
    with engine.begin() as conn:
        codes = [
            r[0]
            for r in conn.execute(
                sa.text(f"SELECT postcode FROM postcodes WHERE terminated IS NULL LIMIT {E2E}")
            )
        ]
        # MPs for every generated constituency code, so each signature resolves to a target.
        conn.execute(
            sa.text(
                "INSERT INTO constituencies SELECT DISTINCT constituency_code, 'Seat ' || constituency_code "
                "FROM postcodes ON CONFLICT DO NOTHING"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO mps SELECT code, 1, 'Member ' || code, NULL, 'Party', "
                "'member.' || lower(code) || '@demo-parliament.invalid', now() FROM constituencies "
                "ON CONFLICT DO NOTHING"
            )
        )
        events = []
        for code in codes:
            sid = uuid.uuid4()
            supporter = Supporter(
                first_name="A",
                last_name="B",
                email=f"{sid.hex[:8]}@example.org",
                postcode=code,
                address_lines=["1 Road"],
            )
            events.append(
                (
                    SignatureConfirmed(
                        signature_id=sid, campaign="guardians-for-children", supporter=supporter
                    ),
                    str(sid),
                )
            )
    env = {
        **os.environ,
        "DEARMP_DATABASE_URL": DB_URL,
        "DEARMP_AMQP_URL": AMQP_URL,
        "DEARMP_BROKER_NAMESPACE": namespace,
        "DEARMP_METRICS_PORT": "0",
        "DEARMP_RESOLVER_BACKENDS": "local",
        "DEARMP_RETRY_DELAYS_MS": ",".join(map(str, delays)),
        "DEARMP_LOG_LEVEL": "warning",
    }
    threads = os.environ.get("BENCH_RESOLVER_THREADS", "4")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.ops.cli", "serve", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for args in (["relay"], ["resolver", "--threads", threads])
    ]
    try:
        time.sleep(3)  # let both connect
        started = time.perf_counter()
        with engine.begin() as conn:
            outbox.add_many(conn, events)  # type: ignore[arg-type]
        deadline = started + 180
        done = 0
        while time.perf_counter() < deadline:
            with engine.connect() as conn:
                done = conn.execute(sa.text("SELECT count(*) FROM resolutions")).scalar_one()
            if done >= len(events):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        print(
            f"  {done:,} of {len(events):,} confirmed signatures resolved end to end in {elapsed:.1f} s "
            f"({done / elapsed:,.0f}/s; relay + 1 resolver process with {threads} consumer threads)"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        delete_all(AMQP_URL, Topology(namespace), delays)


def main() -> None:
    print(f"Resolver benchmark ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}")
    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    ensure_database(DB_URL)
    upgrade(DB_URL)
    engine = make_engine(DB_URL)
    with engine.begin() as conn:
        for path in campaign_files(ROOT / "campaigns"):
            save_campaign(conn, read_campaign_file(path))
    try:
        print("1. ONSPD import")
        bench_import()
        print("2. Local look-ups")
        bench_lookups(engine)
        print("3. End to end through the broker")
        bench_end_to_end(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
