"""Intake benchmark: accepted signatures per second and latency at rising concurrency, against
``dearmp serve intake`` on Postgres, beside the raw Postgres INSERT+COMMIT rate in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/intake.py``). Needs ``wrk`` (Debian package
``wrk``) as the load generator: a C program, so the client steals little CPU from the server on
this 2-core machine. Everything talks to 127.0.0.1 only; the run uses its own database.

Each wrk request posts a distinct valid signature (its own email) to the JSON API, with its own
X-Forwarded-For address, so rate limits (raised, but still counted in Postgres on every request)
apply as they would to many supporters. Baseline: N threads each doing INSERT of a signature-sized
row + COMMIT on their own connection, for the same concurrency.

Environment: BENCH_SECONDS (per level, default 10), BENCH_LEVELS (default "8,32,64,128"),
BENCH_WORKERS (intake processes, default 2).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from shared.campaigns import campaign_files, read_campaign_file, save_campaign  # noqa: E402
from shared.db import ensure_database, make_engine, upgrade  # noqa: E402

DB_NAME = "dearmp_bench_intake"
DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
SECONDS = int(os.environ.get("BENCH_SECONDS", 10))
LEVELS = [int(x) for x in os.environ.get("BENCH_LEVELS", "8,32,64,128").split(",")]
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))

WRK_SCRIPT = r"""
local counter = 0

local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
request = function()
  counter = counter + 1
  local n = string.format("%s-%d-%d", RUN, tid, counter)
  local body = '{"first_name":"Jo","last_name":"Bloggs","email":"b' .. n .. '@example.org",' ..
    '"postcode":"GU11 1AA","address_line1":"1 Test Street","town":"Aldershot",' ..
    '"comment":"Please act.","opt_in":true,"consent":true}'
  local ip = string.format("10.%d.%d.%d", tid % 250, math.floor(counter / 250) % 250, counter % 250)
  local headers = {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}
  return wrk.format("POST", "/api/v1/campaigns/guardians-for-children/signatures", headers, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, connections: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{SECONDS}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": requests / SECONDS,
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": bool(errors),
    }


def raw_insert_rate(threads: int) -> float:
    """INSERT one signature-sized row + COMMIT, per thread on its own connection."""
    url = DB_URL.replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_signatures")
        conn.execute(
            "CREATE TABLE raw_signatures (id uuid PRIMARY KEY, campaign text, email text, "
            "body text, created_at timestamptz DEFAULT now())"
        )
    count = [0] * threads
    stop = time.monotonic() + min(SECONDS, 5)

    def work(i: int) -> None:
        with psycopg.connect(url) as conn:
            while time.monotonic() < stop:
                conn.execute(
                    "INSERT INTO raw_signatures (id, campaign, email, body) VALUES (%s, %s, %s, %s)",
                    (
                        uuid.uuid4(),
                        "guardians-for-children",
                        f"{uuid.uuid4().hex}@example.org",
                        "x" * 400,
                    ),
                )
                conn.commit()
                count[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / (time.monotonic() - started)


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/intake.py needs wrk: apt-get install wrk")
    print(
        f"Intake benchmark ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{WORKERS} intake processes, {SECONDS} s per level"
    )
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
    port = free_port()
    env = {
        **os.environ,
        "DEARMP_DATABASE_URL": DB_URL,
        "DEARMP_HTTP_PORT": str(port),
        "DEARMP_METRICS_PORT": str(free_port()),  # never the site's port (intake refuses that)
        "DEARMP_HTTP_WORKERS": str(WORKERS),
        "DEARMP_RATE_LIMIT_IP": "1000000/60",
        "DEARMP_RATE_LIMIT_EMAIL": "1000000/60",
        "DEARMP_LOG_LEVEL": "warning",
        "DEARMP_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "DEARMP_BROKER_NAMESPACE": f"benchintake{uuid.uuid4().hex[:6]}",
    }
    log_path = ROOT / "var" / "bench" / "intake-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "serve", "intake"],
        env=env,
        cwd=ROOT,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    rows = []
    try:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        warm_up = _script()
        wrk(f"http://127.0.0.1:{port}", 8, warm_up)
        warm_up.unlink()
        for level in LEVELS:
            before = _stored(engine)
            script = _script()
            result = wrk(f"http://127.0.0.1:{port}", level, script)
            script.unlink()
            stored = _stored(engine) - before
            raw = raw_insert_rate(min(level, 32))  # Postgres allows 100 connections in all
            rows.append((level, result, stored / SECONDS, raw))
    finally:
        server.terminate()
        server.wait(30)
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    print(
        f"{'conns':>6} {'req/s':>8} {'stored/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>8} "
        f"{'raw INSERT+COMMIT/s':>20} {'ratio':>6}"
    )
    for level, r, stored, raw in rows:
        print(
            f"{level:>6} {r['rps']:>8,.0f} {stored:>9,.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} "
            f"{int(r['non2xx']):>8} {raw:>20,.0f} {stored / raw:>6.0%}"
        )


def _script() -> Path:
    """A wrk script whose emails are new for this run (so every request is a new signature)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'RUN = "{uuid.uuid4().hex[:8]}"\n' + WRK_SCRIPT)
        return Path(f.name)


def _stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM signatures")).scalar_one())


if __name__ == "__main__":
    main()
