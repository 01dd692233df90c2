"""``dearmp supporters erase EMAIL``: every service removes the supporter's personal data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.mailer.handlers import MailerDeps, send_letter
from services.mailer.models import erased_supporters, letters
from services.resolver.handlers import ResolverDeps
from services.resolver.handlers import forget_supporter as resolver_forget
from services.resolver.models import held_signatures
from shared.messages import Envelope, SignatureConfirmed, SupporterErasureRequested
from shared.supporters import supporter_key
from tests.integration.mailer_helpers import count, dearmp, resolved_event
from tests.support import confirm_email, make_signature, post_signatures, wait_until


def test_erase_removes_a_supporter_everywhere_and_says_what_it_removed(
    system, mail, engine
) -> None:
    system.start()
    gone = make_signature(email="Jo.Bloggs+dearmp@gmail.com", comment="My niece.", opt_in=True)
    stays = make_signature(first_name="Zoë", opt_in=True)
    post_signatures(system.base_url, "guardians-for-children", [gone, stays])
    for caught in mail.handler.wait_for(2, timeout=60)[:2]:
        assert confirm_email(caught.message).status_code == 200
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM letters WHERE purpose = 'copy'") == 2
        and count(engine, "SELECT count(*) FROM subscribers") == 2,
        60,
        message="both letters, copies and subscriptions",
    )

    # Another spelling of the same address: erasure is keyed by the normalised email.
    result = dearmp(system.env, "supporters", "erase", "jobloggs@googlemail.com", "--wait")
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "jobloggs" not in out and "j***@googlemail.com" in out
    assert "intake: removed help_requests 0, signatures 1" in out
    assert "mailer: removed letters 3, pending_confirmations 1" in out  # confirmation, letter, copy
    assert "updates: removed subscribers 1" in out
    assert "resolver: removed held_signatures 0" in out

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


def test_a_letter_in_flight_for_an_erased_supporter_is_not_sent(engine, settings) -> None:
    class Refuse:
        def send(self, *_: object, **__: object) -> None:
            raise AssertionError("nothing may be sent")

    event = resolved_event()
    with engine.begin() as conn:
        conn.execute(
            erased_supporters.insert().values(
                supporter_key=supporter_key(settings.secret_key, event.supporter.email.upper()),
                erased_at=datetime.now(UTC),
            )
        )
    envelope = Envelope.wrap(event, correlation_id=event.signature_id)
    send_letter(event, envelope, MailerDeps(engine, Refuse(), settings))  # type: ignore[arg-type]
    assert count(engine, "SELECT count(*) FROM letters") == 0
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
    deps = ResolverDeps(engine=engine, backends=[], hold_for=timedelta(days=1))
    request = Envelope.wrap(
        SupporterErasureRequested(email="jo.bloggs@example.org"), correlation_id=uuid.uuid4()
    )
    resolver_forget(request.event(), request, deps)  # type: ignore[arg-type]
    resolver_forget(request.event(), request, deps)  # type: ignore[arg-type]  # redelivered
    with engine.connect() as conn:
        left = conn.execute(sa.select(held_signatures.c.signature_id)).scalars().all()
        answers = conn.execute(
            sa.text("SELECT body FROM outbox WHERE routing_key = 'supporter.erased'")
        ).scalars().all()
    assert left == [other]
    assert len(answers) == 1 and b'"held_signatures":1' in answers[0]
