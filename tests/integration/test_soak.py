"""The short soak (issue 16): 1,000 signatures through the web form while one fault of each kind
lands, and the supporters' ledger against what the SMTP server took: nothing lost, nothing
doubled, and every fault landed while work was in flight.

Runs ``bench/soak.py --signatures 1000 --short --json`` (about two minutes). It starts its own
PostgreSQL cluster and RabbitMQ node on free ports in a temporary directory, never the shared
servers, so it needs PostgreSQL's ``initdb``/``pg_ctl`` and RabbitMQ's scripts installed here;
without them it fails under CI=true and skips elsewhere. The run's logs, ledgers and report stay
in var/soak/test-<time>/.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import IN_CI
from tests.support import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.fault]

SHORT_FAULTS = {
    "broker-close": 1,
    "broker-restart": 1,
    "kill": 5,
    "postgres-restart": 1,
    "smtp-stop": 1,
    "smtp-slow": 1,
    "publish": 2,
}
KILLED = {"kill resolver#0", "kill relay#0", "kill intake#0", "kill mailer#0", "kill updates#0"}


@pytest.fixture
def private_servers() -> None:
    from bench.stack import ServerError, postgres_bin, rabbitmq_sbin

    try:
        postgres_bin()
        rabbitmq_sbin()
    except ServerError as exc:
        message = f"the soak cannot run: {exc}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def run_soak(*args: str, timeout: float) -> tuple[int, str, str]:
    """Run the soak; on a timeout, SIGTERM it so it stops its private servers first."""
    proc = subprocess.Popen(
        [sys.executable, "bench/soak.py", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        pytest.fail(f"the soak took over {timeout:.0f}s:\n{err[-6000:]}")
    return proc.returncode, out, err


@pytest.mark.timeout(900)
def test_the_short_soak_loses_and_doubles_nothing(private_servers) -> None:
    run_dir = ROOT / "var" / "soak" / f"test-{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.monotonic()
    code, out, err = run_soak(
        "--signatures", "1000", "--short", "--json", "--run-dir", str(run_dir), timeout=720
    )
    took = time.monotonic() - started
    assert out.strip(), f"no report (exit {code}):\n{err[-6000:]}"
    result = json.loads(out)
    report = err[err.rfind("Dear MP soak:") :] if "Dear MP soak:" in err else err[-6000:]
    print(f"\n{report}\nthe soak took {took:.0f}s")

    assert result["timing"]["drained"], report
    assert result["signatures"]["accepted"] == 1000, report
    assert result["signatures"]["confirmed"] >= 1000, report
    for kind in ("confirmations", "letters", "copies"):
        assert result[kind]["lost"] == 0, f"{kind} lost\n{report}"
        assert result[kind]["doubled"] == 0, f"{kind} doubled\n{report}"
    assert result["letters"]["misdirected"] == 0, report
    assert len(result["updates"]) == 2, report
    for update in result["updates"]:
        assert update["subscribers"] > 0, report
        assert (update["lost"], update["doubled"], update["unexpected"]) == (0, 0, 0), report
        assert update["job"]["status"] == "done", report
    assert result["subscribers"]["missing"] == 0, report
    assert result["dead_letters"] == {}, report
    assert result["fault_errors"] == [], report

    faults = result["faults"]
    kinds: dict[str, int] = {}
    for fault in faults:
        kinds[fault["kind"]] = kinds.get(fault["kind"], 0) + 1
    assert kinds == SHORT_FAULTS, report
    assert {f["label"] for f in faults if f["kind"] == "kill"} == KILLED, report
    landed_idle = [f["label"] for f in faults if not f["in_flight"]]
    assert landed_idle == [], f"faults that landed with no work in flight: {landed_idle}\n{report}"
    assert result["problems"] == [] and code == 0, report


@pytest.mark.timeout(300)
def test_a_retry_waiting_across_a_broker_restart_comes_back(private_servers, tmp_path) -> None:
    """What the consumer does with a transient failure (a persistent, publisher-confirmed copy
    in the service's delay queue, ``declare_service``'s topology), then RabbitMQ restarts
    (``stop_app``, 8 s, ``start_app``) and the delay runs out meanwhile: every retry must still
    come back to the service's queue. On a private node, never the shared one."""
    import pika

    from bench.stack import PrivateBroker
    from shared.broker.declare import declare_service
    from shared.topology import Topology

    topology, delay = Topology("soakretry"), 5000
    broker = PrivateBroker(tmp_path / "rabbitmq", 1, set())
    broker.start()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = conn.channel()
        declare_service(channel, topology, "mailer", [delay])
        channel.confirm_delivery()
        for i in range(20):
            channel.basic_publish(
                "",
                topology.retry_queue("mailer", delay),
                f"retry-{i}".encode(),
                pika.BasicProperties(delivery_mode=2),
                mandatory=True,
            )
        conn.close()
        broker.restart_app(8)
        time.sleep(10)
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = conn.channel()
        back = channel.queue_declare(topology.queue("mailer"), passive=True).method.message_count
        waiting = channel.queue_declare(
            topology.retry_queue("mailer", delay), passive=True
        ).method.message_count
        conn.close()
    finally:
        broker.stop()
    assert back + waiting == 20, f"{20 - back - waiting} of 20 retries lost across the restart"


@pytest.mark.timeout(300)
def test_a_postgres_restart_during_a_send_sends_the_email_once(private_servers, tmp_path) -> None:
    """The mail server takes 2.5 s to answer the confirmation email; PostgreSQL restarts
    (``pg_ctl restart -m fast``) meanwhile and is back before the answer. The mailer got its
    250, so the supporter must get exactly one confirmation. (The sending lease is 10 s, so its
    renewal, every third of that, does not reopen the mailer's connections before the answer.)
    On private servers, never the shared ones."""
    import httpx

    from bench.soak import SHORT_ENV
    from bench.stack import Stack
    from tests.support import make_signature, wait_until

    stack = Stack(
        tmp_path / "run",
        replicas={"relay": 1, "mailer": 1, "intake": 1},
        env_overrides={**SHORT_ENV, "DEARMP_SEND_LEASE_SECONDS": "10"},
    )
    stack.start()
    try:
        ledger = stack.sink.ledger
        stack.sink.answer_after(2.5)
        signature = make_signature(email="once@example.org")
        answer = httpx.post(
            f"{stack.base_url}/api/v1/campaigns/guardians-for-children/signatures",
            json=signature,
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        wait_until(lambda: sum(ledger.answering.values()) > 0, 60, 0.05, "the email held")
        stack.pg.restart()  # back well before the server answers
        stack.sink.answer_after(0)
        wait_until(lambda: ledger.snapshot(), 60, 0.1, "the confirmation")
        wait_until(lambda: stack.letters_unsettled() == 0, 60, 0.5, "the mailer to settle")
        time.sleep(3)
        sends = stack.letters("confirmation")
        confirmations = [e for e in ledger.snapshot() if e.purpose == "confirmation"]
    finally:
        stack.close()
    assert len(confirmations) == 1, (
        f"{len(confirmations)} confirmations for one signature; letters.sends = "
        f"{[r.sends for r in sends.values()]}"
    )


@pytest.mark.timeout(300)
def test_a_postgres_restart_during_a_fanout_send_sends_each_copy_once(
    private_servers, tmp_path
) -> None:
    """The same fault for an update's fan-out: the mail server holds a copy 2.5 s while
    PostgreSQL restarts; the worker got its 250 but lost the connection that marks the copy
    sent. It marks it on its next sweep, so every subscriber gets exactly one copy."""
    from collections import Counter

    from bench.soak import SHORT_ENV
    from bench.stack import Stack
    from tests.integration.updates_helpers import add_subscribers, publish
    from tests.support import wait_until

    stack = Stack(
        tmp_path / "run",
        replicas={"relay": 1, "updates": 1, "intake": 1},
        env_overrides=dict(SHORT_ENV),
    )
    stack.start()
    try:
        assert stack.engine is not None
        subs = add_subscribers(stack.engine, 6)
        ledger = stack.sink.ledger
        stack.sink.answer_after(2.5)
        publish(stack.engine)
        wait_until(lambda: sum(ledger.answering.values()) > 0, 60, 0.05, "a copy held")
        stack.pg.restart()  # back well before the server answers
        stack.sink.answer_after(0)
        wait_until(
            lambda: sum(e.purpose == "update" for e in ledger.snapshot()) >= len(subs),
            120,
            0.2,
            "every copy",
        )
        time.sleep(5)  # give a second copy time to show up
        copies = Counter(e.intended for e in ledger.snapshot() if e.purpose == "update")
    finally:
        stack.close()
    assert sorted(copies) == sorted(s.email for s in subs)
    assert set(copies.values()) == {1}, copies
