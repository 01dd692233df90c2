"""Must-show 2: 200 signatures in flight while the broker restarts; each yields exactly one letter.

Stops the local RabbitMQ application (``rabbitmqctl stop_app``) while confirmations are being
sent, starts it again (always, in ``finally``), then closes every connection while the letters are
in flight. Every signature still produces exactly one confirmation and one letter.

Without the local RabbitMQ and rabbitmqctl the test fails under CI=true and skips, with the
reason, elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support import confirm_email, letters_by_purpose, make_signature, post_signatures

N = 200


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def _cannot_run(why: str) -> None:
    """Fail under CI (a fault test that cannot run there is a broken CI set-up); else skip."""
    message = f"broker restart test cannot run: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def local_broker(amqp_url: str) -> None:
    if shutil.which("rabbitmqctl") is None or urlparse(amqp_url).hostname not in (
        "127.0.0.1",
        "localhost",
    ):
        _cannot_run("needs the local RabbitMQ (127.0.0.1) and rabbitmqctl on PATH to restart it")


@pytest.mark.fault
def test_every_signature_yields_one_letter_across_a_broker_restart(
    local_broker, system, mail
) -> None:
    system.start()
    signatures = [make_signature(postcode="BR8 7RE" if i % 2 else "GU12 4BB") for i in range(N)]
    post_signatures(system.base_url, "guardians-for-children", signatures)

    try:
        time.sleep(0.3)  # some confirmations are out, most are still in the outbox or queues
        at_stop = len(mail.messages)
        rabbitmqctl("stop_app")
        time.sleep(3)
    finally:
        rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    assert at_stop < N, "every confirmation was out before the broker stopped: it proves nothing"

    confirmations = mail.handler.wait_for(N, timeout=180)
    assert len(confirmations) >= N, f"only {len(confirmations)} confirmations arrived"
    with httpx.Client(timeout=30) as client:
        for i, caught in enumerate(confirmations[:N]):
            assert confirm_email(caught.message, client).status_code == 200
            if i == N // 2:
                # Letters are in flight now, and half the confirmations are still to come.
                rabbitmqctl("close_all_connections", "fault test")

    caught = mail.handler.wait_for(3 * N, timeout=240)  # confirmations, letters and copies
    time.sleep(3)  # give any duplicate time to show up
    by_purpose = letters_by_purpose(mail.messages)
    assert len(by_purpose.get("confirmation", [])) == N
    assert len(set(by_purpose["confirmation"])) == N
    letters = by_purpose.get("letter", [])
    duplicates = [mid for mid, n in Counter(letters).items() if n > 1]
    assert len(set(letters)) == N, f"{N - len(set(letters))} letters missing"
    assert duplicates == [], f"{len(duplicates)} letters sent twice"
    assert len(caught) >= 2 * N
