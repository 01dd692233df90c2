"""``dearmp supporters erase EMAIL``: every service removes the supporter's personal data, and
an event that arrives after the request (late: from a retry or dead-letter queue) stores none."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from structlog.testing import capture_logs

from services.mailer import handlers as mailer
from services.mailer.handlers import MailerDeps
from services.mailer.models import erased_supporters, letters
from services.resolver import handlers as resolver
from services.resolver.handlers import ResolverDeps
from services.resolver.lookup import Resolution
from services.resolver.models import erased_supporters as resolver_erased
from services.resolver.models import held_signatures
from services.updates import handlers as updates
from services.updates.models import erased_supporters as updates_erased
from shared.handling import Dispatcher, Erasure
from shared.messages import Envelope, SignatureConfirmed, SupporterErasureRequested
from shared.smtp import SmtpSender
from shared.supporters import supporter_key
from shared.topology import Topology
from tests.integration.mailer_helpers import CAMPAIGN, MP, count, dearmp, resolved_event
from tests.support import (
    confirm_email,
    make_signature,
    post_signatures,
    publish_raw,
    queue_depth,
    wait_until,
)


def mailer_with(engine, settings, sender: object) -> Dispatcher:
    """The mailer's real dispatch and handlers, with a stand-in SMTP sender."""
    deps = MailerDeps(engine, sender, settings)  # type: ignore[arg-type]
    erasure = Erasure(erased_supporters, settings.secret_key)
    return Dispatcher("mailer", engine, mailer.HANDLERS, deps, erasure)


def _assert_nowhere(
    needles: tuple[str, ...], engine: sa.Engine, settings: Any, system: Any, topology: Topology
) -> None:
    """Search every table, every queue of the namespace (dead-letter and delay queues included),
    every service's log and every staff page for each string, as typed and as JSON writes it;
    addresses are compared with their dots removed (Gmail ignores them)."""
    import pika

    from shared.db import metadata
    from tests.integration.admin_helpers import login, make_staff

    def hits(text: str) -> list[str]:
        flat = text.lower().replace(".", "")
        return [
            n
            for n in needles
            for form in {n, json.dumps(n)[1:-1]}
            if form.lower().replace(".", "") in flat
        ]

    found: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                text = " ".join(
                    v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row
                )
                found += [f"table {table.name}: {n}" for n in hits(text)]
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for queue in topology.all_queues(settings.retry_delays):
            depth = channel.queue_declare(queue, passive=True).method.message_count
            for _ in range(depth):
                method, props, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                found += [f"queue {queue}: {n}" for n in hits(body.decode(errors="replace"))]
                channel.basic_publish("", queue, body, props)
                channel.basic_ack(method.delivery_tag)
    finally:
        connection.close()
    for name, service in system.services.items():
        found += [f"log of {name}: {n}" for n in hits(service.output())]
    make_staff(engine)
    with httpx.Client(base_url=system.base_url, timeout=10) as staff:
        login(staff)
        for path in ("/admin", f"/admin/c/{CAMPAIGN}", "/admin/letters/failed", "/admin/dlq"):
            page = staff.get(path)
            assert page.status_code == 200, path
            found += [f"staff page {path}: {n}" for n in hits(page.text)]
    assert not found, found


def resolver_with(engine, deps: ResolverDeps) -> Dispatcher:
    """The resolver's real dispatch and handlers, with the given backends."""
    erasure = Erasure(resolver_erased, deps.secret_key)
    return Dispatcher("resolver", engine, resolver.HANDLERS, deps, erasure)


def test_erase_removes_a_supporter_everywhere_and_says_what_it_removed(
    system, mail, engine, settings
) -> None:
    system.start()
    gone = make_signature(
        email="Jo.Bloggs+dearmp@gmail.com",
        first_name="Ysolde",
        last_name="Quennell",
        address_line1="7 Zephyr Lane",
        comment="My niece.",
        opt_in=True,
    )
    stays = make_signature(first_name="Zoë", opt_in=True)
    post_signatures(system.base_url, "guardians-for-children", [gone, stays])
    for caught in mail.handler.wait_for(2, timeout=60)[:2]:
        assert confirm_email(caught.message).status_code == 200
    wait_until(
        lambda: (
            count(engine, "SELECT count(*) FROM letters WHERE purpose = 'copy'") == 2
            and count(engine, "SELECT count(*) FROM subscribers") == 2
        ),
        60,
        message="both letters, copies and subscriptions",
    )

    # Subject access first: everything held about the person, by another spelling of the address.
    exported = dearmp(system.env, "supporters", "export", "JoBloggs@googlemail.com", "--json")
    assert exported.returncode == 0, exported.stderr + exported.stdout
    record = json.loads(exported.stdout)
    assert [s["comment"] for s in record["signatures"]] == ["My niece."]
    assert record["signatures"][0]["email"] == gone["email"]
    assert sorted(e["purpose"] for e in record["emails"]) == ["confirmation", "copy", "letter"]
    letter = next(e for e in record["emails"] if e["purpose"] == "letter")
    assert "My niece." in letter["body"]  # the letter as sent, while it is kept
    assert [s["email"] for s in record["subscriptions"]] == [gone["email"]]
    assert record["help_requests"] == [] and record["held_signatures"] == []
    assert stays["email"] not in exported.stdout  # only that person
    readable = dearmp(system.env, "supporters", "export", gone["email"])
    assert readable.returncode == 0 and "signatures: 1" in readable.stdout
    assert "emails: 3" in readable.stdout and "My niece." in readable.stdout

    # Their events waiting in dead-letter queues, beside someone else's (the retry queues are
    # swept the same way; here their delays are too short to catch a message in one).
    topology = Topology(settings.broker_namespace)
    theirs = Envelope.wrap(resolved_event(email=gone["email"], comment="My niece.")).to_json()
    others = Envelope.wrap(resolved_event(email=stays["email"])).to_json()
    other_dlq = topology.dead_letter_queue("resolver")
    for queue, body in ((topology.dead_letter_queue("mailer"), theirs), (other_dlq, theirs)):
        publish_raw(settings.amqp_url, "", queue, body)
    publish_raw(settings.amqp_url, "", topology.dead_letter_queue("mailer"), others)

    # Another spelling of the same address: erasure is keyed by the normalised email.
    result = dearmp(system.env, "supporters", "erase", "jobloggs@googlemail.com", "--wait")
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "jobloggs" not in out and "j***@googlemail.com" in out
    assert "intake: removed help_requests 0, signatures 1" in out
    assert "mailer: removed letters 3, pending_confirmations 1" in out  # confirmation, letter, copy
    assert "updates: removed subscribers 1" in out
    assert "resolver: removed held_signatures 0" in out
    assert "outbox: removed events " in out and "rate limits: removed 1" in out
    assert (
        f"queues: removed messages 2 ({topology.dead_letter_queue('mailer')} 1, {other_dlq} 1)"
        in out
    )
    assert queue_depth(settings.amqp_url, topology.dead_letter_queue("mailer")) == 1  # the other
    assert queue_depth(settings.amqp_url, other_dlq) == 0
    with engine.connect() as conn:  # no event in the outbox names them, the request included
        bodies = conn.execute(sa.text("SELECT convert_from(body, 'UTF8') FROM outbox")).scalars()
        assert not [b for b in bodies if "jobloggs" in b.lower().replace(".", "")]

    with engine.connect() as conn:
        sigs = {r.first_name: r for r in conn.execute(sa.text("SELECT * FROM signatures"))}
        subscribers = conn.execute(sa.text("SELECT email FROM subscribers")).scalars().all()
        mailer_rows = conn.execute(sa.select(letters)).all()
    erased = sigs["[erased]"]
    assert erased.email.endswith("@erased.invalid") and erased.email_normalised == erased.email
    assert (erased.last_name, erased.postcode, erased.comment) == ("", "", "")
    assert erased.address_lines == [] and erased.status == "sent"  # still counted
    assert sigs["Zoë"].email == stays["email"]
    assert subscribers == [stays["email"]]
    erased_letters = [r for r in mailer_rows if r.scrubbed_at is not None]
    assert len(erased_letters) == 3
    assert all(r.body is None and r.subject == "" for r in erased_letters)
    assert all(gone["email"] not in r.recipient for r in mailer_rows)
    assert all("My niece." not in (r.body or "") for r in mailer_rows)
    kept = [r for r in mailer_rows if r.scrubbed_at is None]
    assert len(kept) == 3 and any(r.body for r in kept)

    # Again: nothing left to remove, and every service says so.
    again = dearmp(system.env, "supporters", "erase", gone["email"], "--wait")
    assert again.returncode == 0, again.stderr
    for service in ("intake", "mailer", "updates", "resolver"):
        line = next(ln for ln in again.stdout.splitlines() if ln.startswith(f"{service}:"))
        assert all(part.endswith(" 0") for part in line.split("removed ")[1].split(", ")), line

    # Nothing of theirs anywhere: every table, every queue, every log, every staff page.
    needles = ("jobloggs", "Ysolde", "Quennell", "Zephyr", "My niece.")
    _assert_nowhere(needles, engine, settings, system, topology)

    # After erasure the export finds nothing of theirs.
    after = json.loads(dearmp(system.env, "supporters", "export", gone["email"], "--json").stdout)
    assert all(rows == [] for rows in after.values()), after

    # The same person may sign again later, as anyone may: only what came before is refused.
    before = len(mail.messages)
    post_signatures(system.base_url, "guardians-for-children", [{**gone, "comment": "Again."}])
    fresh = mail.handler.wait_for(before + 1, timeout=60)[before]
    assert fresh.message["X-DearMP-Intended-Recipient"] == gone["email"]
    assert confirm_email(fresh.message).status_code == 200
    caught = mail.handler.wait_for(before + 3, timeout=60)[before:]
    letter = next(c for c in caught if str(c.message["Message-ID"]).startswith("<letter."))
    assert "Again." in str(letter.message.get_body(("plain",)).get_content())
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM subscribers") == 2,
        30,
        message="the new signature's subscription",
    )


def test_a_letter_in_flight_for_an_erased_supporter_is_not_sent(engine, settings, mail) -> None:
    event = resolved_event()
    with engine.begin() as conn:
        conn.execute(
            erased_supporters.insert().values(
                supporter_key=supporter_key(settings.secret_key, event.supporter.email.upper()),
                erased_at=datetime.now(UTC),
            )
        )
    envelope = Envelope.wrap(event, correlation_id=event.signature_id)
    mailer_with(engine, settings, SmtpSender(mail.url))(envelope)
    assert mail.messages == []  # nothing reached the server
    assert count(engine, "SELECT count(*) FROM letters") == 0
    assert count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'mailer'") == 1


def test_an_erasure_that_commits_during_the_claim_still_leaves_nothing(
    engine, settings, mail
) -> None:
    """The race the claim cannot see: the erasure commits while the letter's claim is in
    flight, so its scrub misses the new row. Recording the send finds the supporter erased and
    scrubs the row itself; the copy is not sent."""
    event = resolved_event(comment="My niece came here alone.")
    key = supporter_key(settings.secret_key, event.supporter.email)

    def erase_while_the_server_takes_it(_caught: object) -> None:
        """The real server has the letter; before it answers, the erasure (remember + scrub)
        commits."""
        from services.mailer.retention import erase_supporter

        with engine.begin() as conn:
            erase_supporter(conn, key, datetime.now(UTC))
            # ...as if the claim had not yet committed when the scrub ran:
            conn.execute(
                letters.update().values(
                    body=event.supporter.comment, supporter_key=key, scrubbed_at=None
                )
            )

    mail.handler.on_message = erase_while_the_server_takes_it
    envelope = Envelope.wrap(event, correlation_id=event.signature_id)
    mailer_with(engine, settings, SmtpSender(mail.url))(envelope)
    sent = [str(c.message["Message-ID"]) for c in mail.messages]
    assert [m.split(".")[0] for m in sent] == ["<letter"]  # the copy was not sent
    with engine.connect() as conn:
        rows = {r.purpose: r for r in conn.execute(sa.select(letters))}
    assert set(rows) == {"letter"}
    assert rows["letter"].state == "sent"
    assert rows["letter"].body is None and rows["letter"].supporter_key is None
    assert rows["letter"].subject == "" and rows["letter"].scrubbed_at is not None
    assert count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'mailer'") == 1


def test_the_resolver_forgets_held_signatures(engine) -> None:
    def held(email: str) -> uuid.UUID:
        event = resolved_event(email=email)
        confirmed = SignatureConfirmed(
            signature_id=event.signature_id, campaign=event.campaign, supporter=event.supporter
        )
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                held_signatures.insert().values(
                    signature_id=event.signature_id,
                    envelope=Envelope.wrap(confirmed).model_dump(mode="json"),
                    reason="vacant_seat",
                    held_at=now,
                    next_attempt_at=now + timedelta(days=1),
                )
            )
        return event.signature_id

    held("Jo.Bloggs@Example.org")
    other = held("jo.bloggs@example.com")
    deps = ResolverDeps(engine=engine, backends=[], hold_for=timedelta(days=1), secret_key="k")
    request = erasure_request("jo.bloggs@example.org", deps.secret_key)
    handle = resolver_with(engine, deps)
    handle(request)
    handle(request)  # redelivered
    with engine.connect() as conn:
        left = conn.execute(sa.select(held_signatures.c.signature_id)).scalars().all()
        answers = (
            conn.execute(sa.text("SELECT body FROM outbox WHERE routing_key = 'supporter.erased'"))
            .scalars()
            .all()
        )
    assert left == [other]
    assert len(answers) == 1 and b'"held_signatures":1' in answers[0]


def confirmed_event(*, email: str, opt_in: bool = True) -> SignatureConfirmed:
    resolved = resolved_event(email=email)
    supporter = resolved.supporter.model_copy(update={"opt_in": opt_in})
    return SignatureConfirmed(
        signature_id=resolved.signature_id, campaign=resolved.campaign, supporter=supporter
    )


def erasure_request(email: str, secret: str) -> Envelope:
    request = SupporterErasureRequested(key=supporter_key(secret, email))
    return Envelope.wrap(request, correlation_id=uuid.uuid4())


def late(event: SignatureConfirmed) -> Envelope:
    """The event as it comes back from a retry queue: staged before the erasure request."""
    return Envelope.wrap(event, correlation_id=event.signature_id).model_copy(
        update={"occurred_at": datetime.now(UTC) - timedelta(hours=1)}
    )


def personal_data_logged(logs: list[dict[str, object]], *values: str) -> bool:
    return any(v.lower() in str(entry).lower() for entry in logs for v in values)


def test_updates_adds_no_subscriber_for_a_late_confirmation_of_an_erased_supporter(
    engine, settings
) -> None:
    handle = updates.bootstrap(settings, engine)
    handle(erasure_request("jobloggs@gmail.com", settings.secret_key))
    gone = confirmed_event(email="Jo.Bloggs+petitions@googlemail.com")  # the same person
    stays = confirmed_event(email="jo.bloggs@example.org")

    with capture_logs() as logs:
        envelope = late(gone)
        handle(envelope)
        handle(envelope)  # redelivered
    handle(late(stays))

    with engine.connect() as conn:
        emails = conn.execute(sa.text("SELECT email FROM subscribers")).scalars().all()
        remembered = conn.execute(sa.select(updates_erased.c.supporter_key)).scalars().all()
    assert emails == [stays.supporter.email]
    assert remembered == [supporter_key(settings.secret_key, "jobloggs@gmail.com")]
    # Consumed (not retried or dead-lettered), and said so without the address or the name.
    assert count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'updates'") == 3
    assert any("erased supporter" in str(entry["event"]) for entry in logs)
    assert not personal_data_logged(logs, "bloggs", "GU11")


def run_alongside(engine, settings, first: Envelope, then: Envelope) -> None:
    """Handle ``first`` in a transaction left open while ``then`` is handled in another thread;
    commit ``first`` once ``then`` waits for it (or has finished: it did not wait)."""
    handle = updates.bootstrap(settings, engine)
    with engine.connect() as conn:
        transaction = conn.begin()
        handle.within(conn, first)  # the dispatcher's own path, in a transaction held open
        worker = threading.Thread(target=handle, args=(then,))
        worker.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        wait_until(lambda: count(engine, waiting) or not worker.is_alive(), 10)
        transaction.commit()
    worker.join(10)
    assert not worker.is_alive()


def test_a_late_confirmation_waits_for_an_erasure_in_progress(engine, settings) -> None:
    """Subscribers already deleted, the request not yet committed: the late event must not slip
    its subscriber in between."""
    gone = late(confirmed_event(email="Jo@example.org"))
    run_alongside(
        engine, settings, erasure_request("jo@example.org", settings.secret_key), then=gone
    )
    assert count(engine, "SELECT count(*) FROM subscribers") == 0


def test_an_erasure_waits_for_a_confirmation_in_progress(engine, settings) -> None:
    """The subscriber added, not yet committed, when the request comes: the request removes it."""
    gone = late(confirmed_event(email="Jo@example.org"))
    run_alongside(
        engine, settings, gone, then=erasure_request("jo@example.org", settings.secret_key)
    )
    assert count(engine, "SELECT count(*) FROM subscribers") == 0
    with engine.connect() as conn:
        answer = conn.execute(
            sa.text("SELECT body FROM outbox WHERE routing_key = 'supporter.erased'")
        ).scalar_one()
    assert b'"subscribers":1' in answer


class CountingBackend:
    """Answers every postcode with the same MP, and notes which postcodes it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, postcode: str) -> Resolution:
        self.asked.append(postcode)
        return Resolution(
            "resolved", postcode, constituency=resolved_event().constituency, target=MP
        )


class VacantSeat(CountingBackend):
    def lookup(self, postcode: str) -> Resolution:
        self.asked.append(postcode)
        return Resolution("retry", postcode, reason="vacant_seat")


def test_the_resolver_neither_looks_up_holds_nor_resolves_an_erased_supporter(
    engine, settings
) -> None:
    backend = CountingBackend()
    deps = ResolverDeps(
        engine=engine, backends=[backend], hold_for=timedelta(days=1), secret_key="k"
    )
    request = erasure_request("jo.bloggs@example.org", "k")
    handle = resolver_with(engine, deps)
    handle(request)
    gone = confirmed_event(email="Jo.Bloggs@Example.org", opt_in=False)
    stays = confirmed_event(email="someone.else@example.org", opt_in=False)

    with capture_logs() as logs:
        envelope = late(gone)
        for env in (envelope, envelope, late(stays)):
            handle(env)  # the first redelivered
    # A vacant seat would hold the envelope (the supporter's details): not for them either.
    deps.backends = [VacantSeat()]
    held = confirmed_event(email="jo.bloggs@example.org", opt_in=False)
    handle(late(held))

    assert backend.asked == [stays.supporter.postcode]  # their postcode went nowhere
    assert deps.backends[0].asked == []  # type: ignore[attr-defined]
    with engine.connect() as conn:
        resolved = conn.execute(sa.text("SELECT signature_id FROM resolutions")).scalars().all()
        emitted = (
            conn.execute(sa.text("SELECT body FROM outbox WHERE routing_key LIKE 'signature.%'"))
            .scalars()
            .all()
        )
    assert resolved == [stays.signature_id]
    assert len(emitted) == 1 and str(stays.signature_id).encode() in emitted[0]
    assert count(engine, "SELECT count(*) FROM held_signatures") == 0
    assert count(engine, "SELECT count(*) FROM resolver_erased_supporters") == 1
    # The request, gone (once), stays, held.
    assert count(engine, "SELECT count(*) FROM inbox WHERE consumer = 'resolver'") == 4
    assert any("erased supporter" in str(entry["event"]) for entry in logs)
    assert not personal_data_logged(logs, "bloggs", "GU11")
