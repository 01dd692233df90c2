"""``dearmp dlq list|replay`` against real RabbitMQ: poison messages reach the DLQ through the real
consumer, are listed without being disturbed, and are replayed to the service queue, attempts
reset, with nothing lost even when the replay dies half-way."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pika
import pytest
from typer.testing import CliRunner

from services.ops.cli import app
from shared.broker import dlq
from shared.broker.consumer import ATTEMPT_HEADER, ERROR_HEADER, Consumer
from shared.broker.declare import declare_all
from shared.messages import Envelope, SignatureReceived, Supporter
from shared.states import LetterState
from shared.topology import Topology
from tests.support import get_all, publish_raw, queue_depth, wait_until

DELAYS = [200, 400]


class Killed(Exception):
    pass


def cli(amqp_url: str, namespace: str, *args: str) -> Any:
    env = {
        "DEARMP_AMQP_URL": amqp_url,
        "DEARMP_BROKER_NAMESPACE": namespace,
        "DEARMP_RETRY_DELAYS_MS": ",".join(map(str, DELAYS)),
    }
    return CliRunner().invoke(app, list(args), env=env)


def received(email: str = "poison@example.org") -> Envelope:
    return Envelope.wrap(
        SignatureReceived(
            signature_id=uuid.uuid4(),
            campaign="guardians-for-children",
            supporter=Supporter(first_name="P", last_name="Q", email=email, postcode="GU11 1AA"),
        )
    )


def poison_through_the_consumer(
    amqp_url: str, topology: Topology, envelopes: list[Envelope]
) -> None:
    """Publish events the mailer's handler always fails on; its consumer retries each, then
    dead-letters it with the attempt count and the error."""

    def always_fails(envelope: Envelope) -> None:
        raise RuntimeError(f"cannot handle {envelope.type}")

    consumer = Consumer(
        service="mailer",
        amqp_url=amqp_url,
        handle=always_fails,
        topology=topology,
        retry_delays=DELAYS,
        max_attempts=2,
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        assert consumer.connected.wait(30)
        for envelope in envelopes:
            publish_raw(amqp_url, topology.events_exchange, envelope.type, envelope.to_json())
        dlq_name = topology.dead_letter_queue("mailer")
        wait_until(
            lambda: queue_depth(amqp_url, dlq_name) >= len(envelopes), 60, 0.2, "dead letters"
        )
    finally:
        consumer.stop()
        thread.join(30)


@pytest.fixture
def topology(amqp_url: str, namespace: str) -> Topology:
    topology = Topology(namespace)
    declare_all(amqp_url, topology, DELAYS)
    return topology


def test_list_shows_dead_letters_and_replay_moves_them_back(amqp_url, namespace, topology) -> None:
    poisoned = [received(), received()]
    poison_through_the_consumer(amqp_url, topology, poisoned)
    # And one that is not even an envelope, put straight into the DLQ as the consumer would.
    publish_raw(
        amqp_url,
        topology.dead_letter_exchange,
        topology.dead_letter_queue("mailer"),
        b"\xff not json",
        headers={ATTEMPT_HEADER: 1, ERROR_HEADER: "BadEvent: not an event envelope: 1 errors"},
    )
    dlq_name, queue = topology.dead_letter_queue("mailer"), topology.queue("mailer")
    assert queue_depth(amqp_url, dlq_name) == 3

    listed = cli(amqp_url, namespace, "dlq", "list", "mailer")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert len(lines) == 3
    assert {line.split("  ")[0] for line in lines[:2]} == {str(e.id) for e in poisoned}
    for line in lines[:2]:
        assert "  signature.received  attempts=2  " in line
        assert "RuntimeError: cannot handle signature.received" in line
    assert "BadEvent: not an event envelope" in lines[2] and "attempts=1" in lines[2]
    assert "poison@example.org" not in listed.output  # the payload is never shown

    # Listing changes nothing: same messages, same order; the full queue name works too.
    as_json = cli(amqp_url, namespace, "dlq", "list", dlq_name, "--json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert [r["event_id"] for r in rows] == [line.split("  ")[0] for line in lines]
    assert rows[0]["type"] == "signature.received" and rows[0]["attempts"] == 2
    assert rows[0]["dead_lettered_at"]
    assert queue_depth(amqp_url, dlq_name) == 3

    replayed = cli(amqp_url, namespace, "dlq", "replay", "mailer")
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.strip() == f"moved 3 messages from {dlq_name} to {queue}"
    assert queue_depth(amqp_url, dlq_name) == 0
    back = get_all(amqp_url, queue)
    assert len(back) == 3
    bodies = [body for _props, body in back]
    assert set(bodies[:2]) == {e.to_json() for e in poisoned} and bodies[2] == b"\xff not json"
    for props, _body in back:
        headers = props.headers or {}
        assert ATTEMPT_HEADER not in headers and ERROR_HEADER not in headers  # tried afresh
        assert headers["x-dearmp-replayed"] == 1

    empty = cli(amqp_url, namespace, "dlq", "list", "mailer")
    assert empty.exit_code == 0 and empty.output.strip() == f"no dead letters in {dlq_name}"


def test_bad_input_is_one_line_and_non_zero(amqp_url, namespace, topology) -> None:
    for command in ("list", "replay"):
        result = cli(amqp_url, namespace, "dlq", command, "nonsense")
        assert result.exit_code != 0
        assert len(result.output.strip().splitlines()) == 1
        assert "unknown queue 'nonsense'" in result.output
    missing = cli(amqp_url, f"{namespace}x", "dlq", "list", "mailer")
    assert missing.exit_code != 0 and "does not exist" in missing.output
    down = CliRunner().invoke(
        app,
        ["dlq", "list", "mailer"],
        env={"DEARMP_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"},
    )
    assert down.exit_code != 0 and "cannot reach RabbitMQ" in down.output


def test_a_replay_that_dies_half_way_loses_nothing(
    amqp_url, namespace, topology, monkeypatch
) -> None:
    dlq_name, queue = topology.dead_letter_queue("mailer"), topology.queue("mailer")
    bodies = {f"message {i}".encode() for i in range(40)}
    for body in sorted(bodies):
        publish_raw(
            amqp_url, topology.dead_letter_exchange, dlq_name, body, headers={ATTEMPT_HEADER: 5}
        )

    # The process "dies" after the broker confirmed the 11th copy but before the DLQ's ack.
    real_ack = pika.adapters.blocking_connection.BlockingChannel.basic_ack
    acks = {"n": 0}

    def dying_ack(self, delivery_tag=0, multiple=False):  # type: ignore[no-untyped-def]
        acks["n"] += 1
        if acks["n"] == 11:
            raise Killed("the process died here")
        return real_ack(self, delivery_tag, multiple)

    monkeypatch.setattr(pika.adapters.blocking_connection.BlockingChannel, "basic_ack", dying_ack)
    with pytest.raises(Killed):
        dlq.replay(amqp_url, topology, "mailer")
    monkeypatch.undo()

    # Every message is somewhere: 11 copies in the queue, 30 (the unacked one included) in the DLQ.
    assert queue_depth(amqp_url, queue) == 11
    wait_until(lambda: queue_depth(amqp_url, dlq_name) == 30, 30, 0.1, "the unacked message back")
    finished = cli(amqp_url, namespace, "dlq", "replay", "mailer")
    assert finished.exit_code == 0 and "moved 30 messages" in finished.output
    arrived = [body for _props, body in get_all(amqp_url, queue)]
    assert set(arrived) == bodies  # nothing lost
    assert len(arrived) == 41  # one twice: consumers are idempotent
    assert queue_depth(amqp_url, dlq_name) == 0


def test_status_flags_dead_letters(amqp_url, namespace, topology, database_url) -> None:
    publish_raw(
        amqp_url,
        topology.dead_letter_exchange,
        topology.dead_letter_queue("mailer"),
        received().to_json(),
        headers={ATTEMPT_HEADER: 5, ERROR_HEADER: "RuntimeError: boom"},
    )
    env = {
        "DEARMP_AMQP_URL": amqp_url,
        "DEARMP_BROKER_NAMESPACE": namespace,
        "DEARMP_RETRY_DELAYS_MS": ",".join(map(str, DELAYS)),
        "DEARMP_DATABASE_URL": database_url,
    }
    text = CliRunner().invoke(app, ["status"], env=env)
    assert text.exit_code == 0, text.output
    mailer_line = next(line for line in text.output.splitlines() if line.startswith("mailer "))
    assert mailer_line.split()[:5] == ["mailer", "0", "none", "0", "1"]
    assert "! dead letters: dearmp dlq list mailer" in mailer_line
    assert "1 dead letters in all" in text.output
    assert "Outbox backlog: 0 events" in text.output
    as_json = CliRunner().invoke(app, ["status", "--json"], env=env)
    report = json.loads(as_json.output)
    assert report["dead_letters_total"] == 1
    assert report["services"]["mailer"] == {
        "queue": topology.queue("mailer"),
        "declared": True,
        "messages": 0,
        "consumers": 0,
        "retrying": 0,
        "dead_letters": 1,
    }
    assert report["outbox_backlog"] == 0
    assert report["letters"] == {state.value: 0 for state in LetterState}  # every state, none


def test_an_erasure_drops_the_persons_messages_from_every_queue_of_every_service(
    amqp_url, namespace, topology
) -> None:
    """A stopped service's main queue, a DLQ and a retry queue each hold the person's event
    beside someone else's: the person's go, the others stay, each where it was."""
    theirs, others = received("Jo.Bloggs@example.org"), received("someone@example.org")
    queues = [
        topology.queue("resolver"),  # no consumer: the service is stopped
        topology.dead_letter_queue("mailer"),
        topology.retry_queue("updates", 4000),  # declared here without a delay: it stays put
    ]
    with dlq.confirming_channel(amqp_url) as channel:
        channel.queue_declare(queues[2], durable=True, arguments={"x-queue-type": "quorum"})
    for queue in queues:
        publish_raw(amqp_url, "", queue, theirs.to_json())
        publish_raw(amqp_url, "", queue, others.to_json())

    dropped = dlq.drop_messages_about(amqp_url, topology, "JO.Bloggs@Example.org", [*DELAYS, 4000])

    assert dropped == {queue: 1 for queue in queues}
    for queue in queues:
        left = [json.loads(body)["id"] for _, body in get_all(amqp_url, queue)]
        assert left == [str(others.id)], queue
