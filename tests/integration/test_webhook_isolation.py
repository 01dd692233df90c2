"""Webhooks against hostile endpoints (issue 25): real servers on 127.0.0.1 that stall, answer
without end, or sit behind a private address, and the updates worker's sender against real
Postgres.

- "Webhook SSRF": endpoints stored as a private address in any form (``localhost``, ``127.1``,
  ``0x7f.0.0.1``, a trailing dot) are never connected to, and the failure log says the same
  thing whether the port is open or closed;
- "One endpoint blocks all": while one endpoint stalls, another organisation's delivery goes;
  the stalled request ends at the deadline, before its lease; a huge answer is not read.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from services.updates.handlers import bootstrap
from services.updates.models import webhook_deliveries, webhook_failures
from services.updates.webhook_sender import WebhookSender
from shared.config import Settings
from shared.organisations import organisation_of
from shared.reference import webhook_endpoints
from shared.webhooks import add_endpoint, new_secret
from tests.integration.test_organisations import A, B, two_organisations
from tests.integration.webhook_helpers import Receiver, confirmed
from tests.support import free_port, wait_until

REFUSED = "refused: not a public address"


@pytest.fixture
def quick(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        webhooks_allow_http_localhost=True,  # the tests' escape hatch: it must open nothing more
        webhook_sweep_seconds=0.1,
        webhook_timeout_seconds=5,
        webhook_retry_seconds=0.1,
        webhook_retry_max_seconds=0.3,
        webhook_max_attempts=50,
    )


def rows(engine: sa.Engine, table: sa.Table) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)))


def failures_by_url(engine: sa.Engine) -> dict[str, list[str]]:
    query = (
        sa.select(webhook_endpoints.c.url, webhook_failures.c.error)
        .join(webhook_deliveries, webhook_deliveries.c.id == webhook_failures.c.delivery_id)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
    )
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for url, error in conn.execute(query):
            found.setdefault(url, []).append(error)
    return found


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()


class Hostile:
    """An HTTP endpoint on 127.0.0.1 that reads the request, then either trickles one endless
    header line a byte at a time (``stall``: each read gets something well within any socket
    timeout) or declares a 1 GiB answer and sends it as fast as it is taken (``huge``, up to
    ``cap`` bytes). It notes when the client cut it off."""

    def __init__(self, mode: str, cap: int = 32 * 2**20) -> None:
        self.mode, self.cap = mode, cap
        self.requests = 0
        self.open = 0
        self.written = 0
        self.cut_by_client = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        hostile = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.rfile.read(length)
                with hostile.lock:
                    hostile.requests += 1
                    hostile.open += 1
                try:
                    hostile.answer(self.connection)
                except OSError:
                    hostile.cut_by_client.set()
                finally:
                    with hostile.lock:
                        hostile.open -= 1

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, conn: socket.socket) -> None:
        if self.mode == "stall":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.stopping.wait(0.1):
                conn.sendall(b"a")
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
        chunk = b"\0" * 65536
        while self.written < self.cap and not self.stopping.is_set():
            conn.sendall(chunk)
            self.written += len(chunk)

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def register(engine: sa.Engine, campaign: str, url: str) -> str:
    with engine.begin() as conn:
        _, secret = add_endpoint(
            conn, organisation_of(conn, campaign) or "", url, allow_http_localhost=True
        )
    return secret


def resolving_to_loopback(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """The system resolver, as the process sees it, answers 127.0.0.1 for ``names`` (as a
    hostile owner's DNS would for a name of theirs)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_private_addresses_in_any_form_are_never_connected_to(engine, quick, monkeypatch) -> None:
    """Finding "Webhook SSRF". The rows are written straight to the table, as endpoints added
    before today's rules were (or by a bug in them); the sender checks again."""
    resolving_to_loopback(monkeypatch, "crm.example.org")
    listener = Listener()
    closed = free_port()
    urls = [
        f"https://crm.example.org:{listener.port}/hook",  # a name that resolves to 127.0.0.1
        f"https://crm.example.org:{closed}/hook",  # the same, a closed port
        f"https://localhost:{listener.port}/hook",
        f"https://localhost.:{listener.port}/hook",
        f"https://127.1:{listener.port}/hook",
        f"https://0x7f.0.0.1:{listener.port}/hook",
        f"https://0177.0.0.1:{listener.port}/hook",
        f"http://localhost:{listener.port}/hook",  # the escape hatch is http://127.0.0.1 only
    ]
    try:
        with engine.begin() as conn:
            organisation = organisation_of(conn, A)
            for url in urls:
                conn.execute(
                    webhook_endpoints.insert().values(
                        organisation=organisation,
                        url=url,
                        secret=new_secret(),
                        created_at=datetime.now(UTC),
                    )
                )
        bootstrap(quick, engine)(confirmed(A))
        sender = WebhookSender(engine, quick)
        wait_until(
            lambda: sender() >= 0 and len(failures_by_url(engine)) == len(urls),
            20,
            0.05,
            "a failed attempt per endpoint",
        )
        assert listener.connections == 0
        found = failures_by_url(engine)
        assert all(error.startswith("refused: ") for errors in found.values() for error in errors)
        # The log cannot be used as a port scanner: an open port and a closed one read alike.
        assert set(found[urls[0]]) == set(found[urls[1]]) == {REFUSED}
        assert all(
            d.state == "pending" and d.attempts >= 1 for d in rows(engine, webhook_deliveries)
        )
    finally:
        listener.stop()


def keep_sending(sender: WebhookSender) -> tuple[threading.Event, threading.Thread]:
    """The worker's periodic webhook thread: one sweep after another until stopped."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            sender()
            stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread


def test_a_stalled_endpoint_holds_up_no_other_and_ends_at_the_deadline(engine, quick) -> None:
    """Finding "One endpoint blocks all": alpha's endpoint never finishes its answer; beta's
    delivery goes while it stalls; the stalled request is cut at the deadline (5 s here) and
    recorded before its lease ends, so no second sender could have taken it meanwhile."""
    two_organisations(engine)
    stalling = Hostile("stall")
    beta = Receiver().start()
    register(engine, A, stalling.url)
    beta.secret = register(engine, B, beta.url)
    handle = bootstrap(quick, engine)
    handle(confirmed(A))
    handle(confirmed(A))  # a second delivery to the stalled endpoint waits its turn
    with engine.begin() as conn:  # alpha's are due first, so a one-at-a-time sender takes them
        conn.execute(
            webhook_deliveries.update().values(
                next_attempt_at=datetime.now(UTC) - timedelta(minutes=1)
            )
        )
    theirs = confirmed(B)
    handle(theirs)
    sender = WebhookSender(engine, quick, slice_seconds=1)
    stop, thread = keep_sending(sender)
    try:
        wait_until(lambda: stalling.open, 10, 0.02, "the stalled request")
        leases = {d.id: d.next_attempt_at for d in rows(engine, webhook_deliveries)}
        wait_until(lambda: str(theirs.id) in beta.accepted, 10, 0.02, "beta's delivery")
        assert stalling.open == 1  # still stalled when beta's went: it held nothing up
        assert stalling.requests == 1  # and alpha's second delivery waits: one at a time

        def first_failure() -> Any:
            return next(iter(rows(engine, webhook_failures)), None)

        failure = wait_until(first_failure, 20, 0.05, "the stalled request's end")
        assert failure.error == "no answer within 5 s" and failure.status_code is None
        assert stalling.cut_by_client.wait(10)  # we hung up; it did not finish
        assert failure.at < leases[failure.delivery_id]
    finally:
        stop.set()
        stalling.stop()
        beta.stop()
        thread.join(20)
        getattr(sender, "close", lambda: None)()
    assert not thread.is_alive()


def test_a_huge_answer_is_not_read(engine, quick) -> None:
    """Finding "One endpoint blocks all" (memory): the endpoint answers 200 and a body of
    1 GiB; the sender keeps the status, reads a few KB and hangs up."""
    huge = Hostile("huge")
    register(engine, A, huge.url)
    bootstrap(quick, engine)(confirmed(A))
    sender = WebhookSender(engine, quick)
    try:
        wait_until(
            lambda: sender() >= 0 and rows(engine, webhook_deliveries)[0].state == "delivered",
            20,
            0.05,
            "the delivery",
        )
        assert huge.cut_by_client.wait(10)
        # What it managed to write is what the sockets' buffers took, not the 32 MiB it offered.
        assert huge.written < huge.cap // 2, huge.written
        assert rows(engine, webhook_failures) == []
    finally:
        huge.stop()


@pytest.fixture
def tls_server() -> Any:
    """An HTTPS server on 127.0.0.1 with a certificate for crm.example.org from a test CA; it
    records the TLS server name and the Host header it was given."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    seen: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            seen["host"] = self.headers["Host"]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    def serve(name: str) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(name).configure_cert(context)
        context.sni_callback = lambda sock, server_name, ctx: seen.update(sni=server_name)
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return int(server.server_address[1])

    servers: list[ThreadingHTTPServer] = []
    client = ssl.create_default_context()
    ca.configure_trust(client)
    yield serve, client, seen
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_checked_address_is_the_one_connected_to_with_the_hosts_tls(
    tls_server, monkeypatch
) -> None:
    """Pinning: ``post`` connects to the address it is given and never looks the name up
    (any look-up of a name fails here), while TLS's server name, the certificate check and the
    Host header are the host's."""
    from services.updates.webhook_sender import post
    from shared.webhooks import Target

    serve, client, seen = tls_server
    real = socket.getaddrinfo

    def numbers_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not str(host).replace(".", "").isdigit():
            raise AssertionError(f"looked up {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numbers_only)
    port = serve("crm.example.org")
    target = Target(
        "https", "crm.example.org", port, f"crm.example.org:{port}", "/hook", ("127.0.0.1",)
    )
    outcome = post(target, b"{}", {"Content-Type": "application/json"}, seconds=5, tls=client)
    assert (outcome.status, outcome.error) == (204, None)
    assert seen == {"sni": "crm.example.org", "host": f"crm.example.org:{port}"}

    # The same address with a certificate for another name: refused by the TLS check.
    other = serve("other.example.org")
    target = Target(
        "https", "crm.example.org", other, f"crm.example.org:{other}", "/hook", ("127.0.0.1",)
    )
    outcome = post(target, b"{}", {}, seconds=5, tls=client)
    assert outcome.status is None and outcome.error and outcome.error.startswith("TLS failed")
