"""The floor under the pipeline: what the fixed shape costs per signature before any Dear MP code
runs (issue 17).

A signature through ``bench/pipeline.py`` is four HTTP requests to intake (sign, confirm page,
confirm, thank-you page), four events published through RabbitMQ and delivered seven times
(signature.received to the mailer; signature.confirmed to the resolver, the mailer and updates;
signature.resolved to intake and the mailer; letter.sent to intake), three emails over SMTP, and
the statements counted from PostgreSQL's log (``PIPELINE_LOG_STATEMENTS=1``). This bench
measures each of those with the bare libraries on this machine, in the same run:

- HTTP: a FastAPI app with one page route and one form route, served by uvicorn as intake is
  (httptools, uvloop, no access log), driven with keep-alive connections as the pipeline's client
  does; CPU of the server process per request.
- AMQP: pika publishing persistent messages with publisher confirms (batches of 100, as the relay)
  to a quorum queue, then a pika consumer taking them with manual acks (prefetch 50); CPU of the
  bench process and of the RabbitMQ node, per publish and per delivery.
- PostgreSQL: ``SELECT 1`` round trips with psycopg (prepared, autocommit), and an autocommit
  single-row INSERT (each its own commit, as our one-statement handlers); CPU of the client and
  of the backend per statement.
- SMTP: smtplib sending a 3 KB message on one connection to an aiosmtpd sink in a child process;
  CPU of the client per message.

It prints each floor and their sum for one signature, beside the pipeline's own figure if given
(``FLOORS_PIPELINE_MS``, the total CPU per signature ``bench/pipeline.py`` printed, and
``FLOORS_STATEMENTS``, its statements per signature; defaults: the figures in
docs/benchmarks.md). Environment: ``FLOORS_N`` (operations per measurement, default 4000).
"""

from __future__ import annotations

import email.policy
import http.client
import os
import smtplib
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402

AMQP = os.environ.get("DEARMP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG = os.environ.get("FLOORS_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
N = int(os.environ.get("FLOORS_N", 4000))
PIPELINE_MS = float(os.environ.get("FLOORS_PIPELINE_MS", 0) or 0)
STATEMENTS = float(os.environ.get("FLOORS_STATEMENTS", 30))

REQUESTS, PUBLISHES, DELIVERIES, EMAILS = 4, 4, 7, 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float = 10.0) -> None:
    """Until something listens on 127.0.0.1:``port`` (a server this bench started)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on port {port} after {seconds:g}s") from None
            time.sleep(0.1)


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


# -- HTTP ------------------------------------------------------------------------------------------
APP = textwrap.dedent(
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, RedirectResponse

    app = FastAPI()
    PAGE = "<!doctype html><html><body>" + "<p>Dear MP, please act.</p>" * 200 + "</body></html>"

    @app.get("/page")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.post("/form")
    async def form(request: Request) -> RedirectResponse:
        await request.form()
        return RedirectResponse("/page", status_code=303)
    """
)


def http_floor() -> float:
    """Server CPU ms per request: half page GETs, half form POSTs."""
    folder = ROOT / "var" / "floors"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "floor_app.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port), "--no-access-log"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def go(n: int) -> None:
            for i in range(n):
                if i % 2:
                    body = b"csrf_token=abc&name=Jo"
                    headers = {"Content-Type": "application/x-www-form-urlencoded"}
                    conn.request("POST", "/form", body, headers)
                else:
                    conn.request("GET", "/page")
                conn.getresponse().read()

        go(200)  # warm up
        proc = psutil.Process(server.pid)
        before = cpu(proc)
        go(N)
        return (cpu(proc) - before) / N * 1000
    finally:
        server.terminate()
        server.wait(10)


# -- AMQP ------------------------------------------------------------------------------------------
def rabbit_process() -> psutil.Process:
    port = urlparse(AMQP).port or 5672
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise SystemExit(f"no RabbitMQ listening on port {port}")


def amqp_floor() -> tuple[float, float, float, float]:
    """(client ms per publish, RabbitMQ ms per publish, client ms per delivery, RabbitMQ ms per
    delivery), persistent messages on a quorum queue, confirms and manual acks."""
    rabbit = rabbit_process()
    queue = f"floors.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    body = b'{"type": "signature.confirmed", "payload": {' + b'"x": "' + b"y" * 900 + b'"}}'
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    try:
        me = psutil.Process()
        mine, theirs = cpu(me), cpu(rabbit)
        # The relay's way: a batch of publishes, then wait for their confirms.
        pub = connection.channel()
        pub.confirm_delivery()
        for start in range(0, N, 100):
            for _ in range(min(100, N - start)):
                pub.basic_publish("", queue, body, props)
        published = (cpu(me) - mine, cpu(rabbit) - theirs)
        mine, theirs = cpu(me), cpu(rabbit)
        got = 0
        consumer = connection.channel()
        consumer.basic_qos(prefetch_count=50)
        for method, _props, _body in consumer.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            consumer.basic_ack(method.delivery_tag)
            got += 1
            if got == N:
                break
        consumer.cancel()
        delivered = (cpu(me) - mine, cpu(rabbit) - theirs)
    finally:
        channel.queue_delete(queue)
        connection.close()
    return (
        published[0] / N * 1000,
        published[1] / N * 1000,
        delivered[0] / max(got, 1) * 1000,
        delivered[1] / max(got, 1) * 1000,
    )


# -- PostgreSQL ------------------------------------------------------------------------------------
def pg_floor() -> tuple[float, float]:
    """(client + backend ms per SELECT 1, client + backend ms per committed one-row INSERT)."""
    with psycopg.connect(PG, autocommit=True) as conn:
        backend = psutil.Process(conn.info.backend_pid)
        me = psutil.Process()
        conn.execute("CREATE TEMP TABLE floor_rows (id uuid PRIMARY KEY, body text)")
        out = []
        for sql, params in (
            ("SELECT 1", lambda: None),
            ("INSERT INTO floor_rows VALUES (%s, %s)", lambda: (uuid.uuid4(), "x" * 200)),
        ):
            for _ in range(50):  # warm up, and past psycopg's prepare threshold
                conn.execute(sql, params())
            before = cpu(me) + cpu(backend)
            for _ in range(N):
                conn.execute(sql, params())
            out.append((cpu(me) + cpu(backend) - before) / N * 1000)
    return out[0], out[1]


# -- SMTP ------------------------------------------------------------------------------------------
SINK = textwrap.dedent(
    """
    import sys, time
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    time.sleep(3600)
    """
)


def smtp_floor() -> float:
    """Client CPU ms per 3 KB message on one smtplib connection."""
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        wait_for_port(port)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "Floor"
        msg.set_content("Dear MP,\n\n" + "Please act on this.\n" * 150)
        data = msg.as_bytes(policy=email.policy.SMTP)  # CRLF, as on the wire
        n = N // 4
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("a@example.org", ["b@example.org"], data)
            before = time.process_time()
            for _ in range(n):
                smtp.sendmail("a@example.org", ["b@example.org"], data)
            return (time.process_time() - before) / n * 1000
    finally:
        sink.terminate()
        sink.wait(10)


def main() -> int:
    print(f"floors: {N} operations per measurement")
    http_ms = http_floor()
    pub_client, pub_rabbit, del_client, del_rabbit = amqp_floor()
    select_ms, insert_ms = pg_floor()
    smtp_ms = smtp_floor()
    rows = [
        (f"HTTP, {REQUESTS} requests", REQUESTS * http_ms, f"{http_ms:.3f} ms per request"),
        (
            f"AMQP, {PUBLISHES} publishes + {DELIVERIES} deliveries (clients)",
            PUBLISHES * pub_client + DELIVERIES * del_client,
            f"{pub_client:.3f} per publish, {del_client:.3f} per delivery",
        ),
        (
            "AMQP, the same (RabbitMQ)",
            DELIVERIES * pub_rabbit + DELIVERIES * del_rabbit,
            f"{pub_rabbit:.3f} per enqueue, {del_rabbit:.3f} per delivery",
        ),
        (
            f"PostgreSQL, {STATEMENTS:g} statements (client + backend)",
            STATEMENTS * select_ms,
            f"{select_ms:.3f} per SELECT 1, {insert_ms:.3f} per committed INSERT",
        ),
        (f"SMTP, {EMAILS} emails (client)", EMAILS * smtp_ms, f"{smtp_ms:.3f} ms per email"),
    ]
    total = sum(ms for _, ms, _ in rows)
    print("\nthe shape's floor per signature (CPU ms; bare libraries, no Dear MP code)")
    for label, ms, each in rows:
        print(f"  {label:<58} {ms:6.2f}   ({each})")
    print(f"  {'total':<58} {total:6.2f}")
    if PIPELINE_MS:
        print(f"  pipeline measured (bench/pipeline.py)                       {PIPELINE_MS:6.2f}")
        print(f"  Dear MP's own share above the floor: {PIPELINE_MS - total:.2f} ms")
    print("  goal (issue 17): 15 ms per signature, everything included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
