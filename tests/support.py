"""Test helpers: factories with keyword-only arguments, service processes, waiting."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "test-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def make_signature(
    *,
    postcode: str = "GU11 1AA",
    email: str | None = None,
    first_name: str = "Jo",
    last_name: str = "Bloggs",
    comment: str = "",
    opt_in: bool = False,
    address_line1: str = "1 Test Street",
    town: str = "Aldershot",
    letter: str | None = None,
) -> dict[str, Any]:
    """A signature as the API takes it. ``letter``: own wording, for an editable campaign."""
    signature = {
        "first_name": first_name,
        "last_name": last_name,
        "email": email or f"supporter-{uuid.uuid4().hex[:10]}@example.org",
        "postcode": postcode,
        "address_line1": address_line1,
        "town": town,
        "comment": comment,
        "opt_in": opt_in,
        "consent": True,
    }
    if letter is not None:
        signature["letter"] = letter
    return signature


CONFIRM_RE = re.compile(r"(https?://\S+/confirm/[A-Za-z0-9_\-.]+)")


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token_in(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def confirm(client: httpx.Client, link: str) -> httpx.Response:
    """What a supporter does: open the link, press the button. Returns the page they end on."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(link, data={"csrf_token": csrf_token_in(page.text)}, follow_redirects=True)


def confirm_email(message: Any, client: httpx.Client | None = None) -> httpx.Response:
    link = confirm_url_in(message.get_body(("plain",)).get_content())
    if client is not None:
        return confirm(client, link)
    with httpx.Client(timeout=30) as own:
        return confirm(own, link)


def confirm_url_in(message_text: str) -> str:
    match = CONFIRM_RE.search(message_text)
    assert match, "no confirmation link in the email"
    return match.group(1)


class ServiceProcess:
    """One ``dearmp serve NAME`` subprocess, its output in var/test-logs/."""

    def __init__(self, name: str, env: dict[str, str], *, threads: int = 1, tag: str = ""):
        self.name = name
        self.env = env
        self.threads = threads
        self.log_path = VAR / f"{tag or 'run'}-{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        VAR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        args = [sys.executable, "-m", "services.ops.cli", "serve", self.name]
        if self.name != "intake":
            args += ["--threads", str(self.threads)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def wait_started(self, timeout: float = 30) -> ServiceProcess:
        """Until the process logs that it started ("worker started", "relay started")."""
        wait_until(lambda: 'started"' in self.output(), timeout, 0.1, f"{self.name} to start")
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_http_ok(url: str, timeout: float = 30) -> None:
    def ok() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ok, timeout, 0.2, f"{url} to answer 200")


def queue_depth(amqp_url: str, queue: str) -> int:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


def get_all(amqp_url: str, queue: str) -> list[tuple[Any, bytes]]:
    """Take every message from a queue (acknowledging them): (properties, body) pairs."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    out = []
    try:
        channel = conn.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((props, body))
    finally:
        conn.close()


def publish_raw(
    amqp_url: str,
    exchange: str,
    routing_key: str,
    body: bytes,
    headers: dict[str, Any] | None = None,
) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                delivery_mode=2, message_id=str(uuid.uuid4()), type=routing_key, headers=headers
            ),
            mandatory=True,
        )
    finally:
        conn.close()


def post_signatures(base_url: str, campaign: str, signatures: list[dict[str, Any]]) -> None:
    with httpx.Client(timeout=30) as client:
        for sig in signatures:
            response = client.post(f"{base_url}/api/v1/campaigns/{campaign}/signatures", json=sig)
            assert response.status_code == 202, response.text


def letters_by_purpose(caught: list[Any]) -> dict[str, list[str]]:
    """Message-IDs at the SMTP server, grouped by purpose (the id is ``<purpose.signature@…>``)."""
    out: dict[str, list[str]] = {}
    for c in caught:
        mid = str(c.message["Message-ID"]).strip("<>")
        out.setdefault(mid.split(".", 1)[0], []).append(mid)
    return out


def wait_for_purpose(mail: Any, purpose: str, count: int, timeout: float = 60) -> list[str]:
    """Wait until ``count`` emails of one purpose (confirmation, letter, copy…) have arrived."""
    return wait_until(
        lambda: (
            (ids := letters_by_purpose(list(mail.messages)).get(purpose, []))
            and len(ids) >= count
            and ids
        ),
        timeout,
        0.2,
        f"{count} {purpose} emails",
    )
