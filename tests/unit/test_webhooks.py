"""Webhooks without I/O: the signature a receiver checks, which addresses may be registered, and
the back-off between attempts."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from services.updates.webhook_sender import backoff
from shared import webhook_signing
from shared.config import Settings
from shared.webhooks import WebhookError, check_url

SECRET = "whsec_test-secret"
BODY = b'{"id":"e1","type":"letter.sent","data":{}}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body_and_verifies() -> None:
    now = time.time()
    headers = webhook_signing.headers(SECRET, "e1", "letter.sent", BODY, now=now)
    stamp, signed = headers["X-DearMP-Timestamp"], headers["X-DearMP-Signature"]
    # What the README tells a receiver to compute, by hand.
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert signed == f"v1={expected}"
    assert headers["X-DearMP-Event-Id"] == "e1"
    assert webhook_signing.verify(SECRET, stamp, signed, BODY, now=now)


@pytest.mark.parametrize(
    "secret, body, age",
    [
        ("whsec_wrong", BODY, 0),  # a wrong secret does not verify
        (SECRET, BODY + b" ", 0),  # nor a changed body
        (SECRET, BODY, 301),  # nor an old request played again
    ],
)
def test_what_does_not_verify(secret: str, body: bytes, age: int) -> None:
    now = time.time()
    headers = webhook_signing.headers(SECRET, "e1", "letter.sent", BODY, now=now - age)
    stamp, signed = headers["X-DearMP-Timestamp"], headers["X-DearMP-Signature"]
    assert not webhook_signing.verify(secret, stamp, signed, body, now=now)
    assert not webhook_signing.verify(SECRET, "not-a-number", signed, BODY, now=now)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("", "give the endpoint's address"),
        ("http://crm.example.org/hook", "https://"),
        ("http://127.0.0.1:8080/hook", "https://"),  # not unless allowed
        ("ftp://crm.example.org/", "https://"),
        ("https://user:pw@crm.example.org/", "without a password"),
        ("https://crm/hook", "public host"),
        ("https://10.0.0.7/hook", "public host"),  # the staff cannot aim it inside
        ("https://169.254.169.254/latest/meta-data", "public host"),
        ("https://[::1]/hook", "public host"),
        ("https://crm.example.org/a b", "without spaces"),
        ("https://crm.example.org:http/", "not a valid URL"),
    ],
)
def test_addresses_refused_with_one_line(url: str, problem: str) -> None:
    with pytest.raises(WebhookError) as caught:
        check_url(url)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_addresses_accepted() -> None:
    assert check_url(" https://crm.example.org/hooks/dearmp?x=1 ") == (
        "https://crm.example.org/hooks/dearmp?x=1"
    )
    local = "http://127.0.0.1:8080/hook"
    assert check_url(local, allow_http_localhost=True) == local
    assert check_url("https://8.8.8.8/hook") == "https://8.8.8.8/hook"
    with pytest.raises(WebhookError):
        check_url("http://localhost:8080/hook", allow_http_localhost=True)


def test_backoff_doubles_up_to_the_longest() -> None:
    settings = Settings(webhook_retry_seconds=30, webhook_retry_max_seconds=3600)
    delays = [backoff(settings, n) for n in range(1, 10)]
    assert delays[:4] == [30, 60, 120, 240]
    assert delays[-1] == 3600 and delays == sorted(delays)
    # The default schedule keeps trying for hours before a delivery is marked failed.
    total = sum(backoff(settings, n) for n in range(1, Settings().webhook_max_attempts))
    assert 6 * 3600 < total < 12 * 3600


def test_status_shows_webhook_deliveries_and_points_at_the_failure_log() -> None:
    from services.ops.status import render_status

    report = {"queues": {"error": "x"}, "outbox_backlog": 0, "letters": {}}
    text = render_status({**report, "webhooks": {"failed": 2, "delivered": 5}})
    assert "Webhooks: delivered 5 · failed 2  (failure log: /admin/webhooks)" in text
    assert "Webhooks" not in render_status({**report, "webhooks": {}})
