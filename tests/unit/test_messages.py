from __future__ import annotations

import uuid

import pytest

from shared.messages import (
    EVENT_TYPES,
    BadEvent,
    Envelope,
    SignatureReceived,
    Supporter,
    UnknownEvent,
)
from shared.topology import BINDINGS, Topology


def make_event() -> SignatureReceived:
    return SignatureReceived(
        signature_id=uuid.uuid4(),
        campaign="c",
        supporter=Supporter(
            first_name="王", last_name="小明", email="w@example.org", postcode="BR8 7RE"
        ),
    )


def test_envelope_round_trips_with_its_type_and_version() -> None:
    event = make_event()
    envelope = Envelope.wrap(event, correlation_id=event.signature_id)
    again = Envelope.from_json(envelope.to_json())
    assert again.event() == event
    assert (again.type, again.version, again.correlation_id) == (
        "signature.received",
        1,
        str(event.signature_id),
    )


def test_unknown_versions_and_bad_payloads_are_refused() -> None:
    envelope = Envelope.wrap(make_event())
    with pytest.raises(UnknownEvent):
        envelope.model_copy(update={"version": 2}).event()
    with pytest.raises(BadEvent):
        envelope.model_copy(update={"payload": {"campaign": 1}}).event()
    with pytest.raises(BadEvent):
        Envelope.from_json(b"{not json")


def test_every_event_type_is_consumed_by_some_queue() -> None:
    bound = {key for keys in BINDINGS.values() for key in keys}
    assert {t for t, _ in EVENT_TYPES} <= bound
    assert bound <= {
        t for t, _ in EVENT_TYPES
    }  # and no queue waits for an event that does not exist


def test_names_are_namespaced() -> None:
    t = Topology("ns")
    assert t.queue("mailer") == "ns.mailer"
    assert t.dead_letter_queue("mailer") == "ns.mailer.dlq"
    assert t.retry_queue("mailer", 500) == "ns.mailer.delay.500ms"
    assert t.events_exchange == "ns.events"
