"""Must-show 6: `make run` brings the system up and the demo campaign page answers.

Runs the same entry point as `make run` (``python -m services.ops.devrun``) against a database that
does not exist yet, then stops it with Ctrl-C (SIGINT) and checks it exits cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import sqlalchemy as sa

from tests.support import ROOT, free_port


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return "".join(seen)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)
    raise AssertionError(f"{needle!r} not printed; output was:\n{''.join(seen)}")


def test_make_run_serves_the_demo_campaign(pg_server_url, amqp_url, namespace) -> None:
    db_name = f"dearmp_run_{uuid.uuid4().hex[:8]}"
    db_url = sa.make_url(pg_server_url).set(database=db_name).render_as_string(hide_password=False)
    http_port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEARMP_DATABASE_URL": db_url,
        "DEARMP_AMQP_URL": amqp_url,
        "DEARMP_BROKER_NAMESPACE": namespace,
        "DEARMP_HTTP_PORT": str(http_port),
        "DEARMP_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DEARMP_METRICS_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ops.devrun"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = _read_until(proc, "Dear MP is running", 90)
        assert f"http://127.0.0.1:{http_port}/c/guardians-for-children" in out
        page = httpx.get(f"http://127.0.0.1:{http_port}/c/guardians-for-children", timeout=10)
        assert page.status_code == 200
        assert "Give every trafficked and unaccompanied child a guardian" in page.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        admin = sa.create_engine(
            sa.make_url(pg_server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.dispose()


def test_make_run_says_in_one_line_when_postgres_is_unreachable(amqp_url) -> None:
    env = {
        **os.environ,
        "DEARMP_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
        "DEARMP_AMQP_URL": amqp_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.ops.devrun"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    # Not the local server's own port: nothing is started, and the setting to check is named.
    assert lines == [
        "dearmp: PostgreSQL is not reachable at 127.0.0.1:1 (check DEARMP_DATABASE_URL)"
    ]


def test_make_run_says_in_one_line_when_rabbitmq_is_unreachable(pg_server_url) -> None:
    env = {
        **os.environ,
        "DEARMP_DATABASE_URL": pg_server_url,
        "DEARMP_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.ops.devrun"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines == ["dearmp: RabbitMQ is not reachable at 127.0.0.1:1 (check DEARMP_AMQP_URL)"]
