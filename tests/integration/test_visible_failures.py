"""What an organiser can break without knowing (issue 26): a letter that can be written for the
sample supporters but fails for one supporter's details fails THAT signature, with the reason,
on the organisation's own pages; its owners get one notice per campaign per hour; a dead letter
about its campaign shows on its own failed-letters page and no other organisation's.

Real PostgreSQL, RabbitMQ and the SMTP catcher; the journey through the running services
(relay, mailer, intake) where it matters.
"""

from __future__ import annotations

import html
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.admin.accounts import add_staff
from services.intake.admin.roles import Role
from services.intake.app import create_app
from services.intake.models import signatures
from services.mailer.delivery import Unwritten, record_unwritten
from services.mailer.handlers import make_deps
from services.mailer.problems import PURPOSE, send_problem_notices
from shared.broker.consumer import ATTEMPT_HEADER, ERROR_HEADER
from shared.broker.declare import declare_all
from shared.campaigns import Campaign, read_campaign_file, save_campaign
from shared.messages import (
    Envelope,
    LetterSent,
    SignatureReceived,
    SignatureResolved,
    Supporter,
)
from shared.organisations import OWNER_ROLE, checked, save_organisation
from shared.states import SignatureStatus
from shared.tokens import make_token
from shared.topology import Topology
from tests.integration.admin_helpers import STAFF_PASSWORD, login, make_signature_row
from tests.integration.mailer_helpers import resolved_event, stage_letters
from tests.support import ROOT, csrf_token_in, publish_raw, queue_depth, wait_until

# Passes the 12 sample supporters (SW1A 1AA) at save, fails for anyone in GU11 1AA.
TRAP = (
    "Dear {{ target.name }},\n\nPlease act.\n"
    '{% if supporter.postcode == "GU11 1AA" %}{{ 1 | divided_by: 0 }}{% endif %}\n'
    "{{ supporter.full_name }}\n{{ supporter.address }}\n"
)
ORGS = ("alpha", "beta")


def owner(org: str) -> str:
    return f"owner@{org}.example.org"


def setup_orgs(engine: sa.Engine) -> dict[str, Campaign]:
    """Two organisations, each with an owner and a campaign whose letter is the trap."""
    base = read_campaign_file(ROOT / "campaigns" / "guardians-for-children.yaml")
    made = {}
    with engine.begin() as conn:
        for org in ORGS:
            save_organisation(
                conn,
                checked(slug=org, name=org.title(), privacy_url=f"https://{org}.example.org/p"),
            )
    for org in ORGS:
        add_staff(engine, owner(org), STAFF_PASSWORD, organisation=org, role="owner")
        campaign = base.model_copy(
            update={
                "slug": f"{org}-letters",
                "title": f"{org.title()}'s letters",
                "organisation": org,
                "letter": base.letter.model_copy(update={"body": TRAP}),
            }
        )
        with engine.begin() as conn:
            save_campaign(conn, campaign, saved_by=owner(org))  # the samples pass
        made[org] = campaign
    return made


def signed(engine: sa.Engine, campaign: str, postcode: str) -> SignatureResolved:
    """A confirmed, resolved signature (its row) and the signature.resolved the resolver sends."""
    now = datetime.now(UTC)
    row = make_signature_row(
        campaign=campaign, created_at=now, confirmed_at=now, status=SignatureStatus.RESOLVED
    )
    row["postcode"] = postcode
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [row])
    event = resolved_event(campaign=campaign, email=row["email"])
    return event.model_copy(
        update={
            "signature_id": row["id"],
            "supporter": event.supporter.model_copy(update={"postcode": postcode}),
        }
    )


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def status_of(engine: sa.Engine, signature_id: uuid.UUID) -> str:
    return str(scalar(engine, "SELECT status FROM signatures WHERE id = :id", id=signature_id))


def ids_caught(mail: Any) -> list[str]:
    return [str(c.message["Message-ID"]) for c in mail.messages]


def test_a_letter_that_fails_for_one_supporter_fails_that_signature_with_its_reason(
    system, engine, mail
) -> None:
    campaign = setup_orgs(engine)["alpha"]
    trapped = signed(engine, campaign.slug, "GU11 1AA")
    fine = signed(engine, campaign.slug, "SW1A 1AA")
    stage_letters(engine, [trapped, fine])
    system.start("relay", "mailer", "intake")

    wait_until(lambda: status_of(engine, fine.signature_id) == "sent", 60, 0.2, "the fine letter")
    wait_until(
        lambda: status_of(engine, trapped.signature_id) == "failed", 60, 0.2, "failed signature"
    )
    error = scalar(
        engine,
        "SELECT error FROM letters WHERE signature_id = :id AND purpose = 'letter'"
        " AND state = 'failed' AND sends = 0",
        id=trapped.signature_id,
    )
    assert (
        error.startswith("could not be written: ") and "divided_by: can't divide by 0" in error
    ), error
    # Nothing was sent for it (no letter, no copy), and nothing went to the dead-letter queue.
    assert not [m for m in ids_caught(mail) if str(trapped.signature_id) in m]
    dlq = Topology(system.env["DEARMP_BROKER_NAMESPACE"]).dead_letter_queue("mailer")
    assert queue_depth(system.env["DEARMP_AMQP_URL"], dlq) == 0
    failed_events = "SELECT count(*) FROM outbox WHERE routing_key = 'letter.failed'"
    assert scalar(engine, failed_events) == 1

    # The same signature resolved again (a redelivery, a replay): nothing new.
    handled = "SELECT count(*) FROM inbox WHERE consumer = 'mailer'"
    before = scalar(engine, handled)
    stage_letters(engine, [trapped])
    wait_until(lambda: scalar(engine, handled) > before, 60, 0.2, "the mailer took it again")
    assert scalar(engine, failed_events) == 1
    assert not [m for m in ids_caught(mail) if str(trapped.signature_id) in m]

    # Its owners hear once (the mailer's sweep), not once per signature.
    def notices() -> list[Any]:
        return [c for c in mail.messages if PURPOSE in str(c.message["Message-ID"])]

    wait_until(lambda: len(notices()) >= 1, 90, 0.5, "the owners' notice")
    (notice,) = notices()
    assert notice.message["X-DearMP-Intended-Recipient"] == owner("alpha")
    text = notice.message.get_body(("plain",)).get_content()
    assert '1 letter of your campaign "Alpha\'s letters" could not be written' in text, text
    assert "can't divide by 0" in text
    assert f"/admin/letters/failed?campaign={campaign.slug}" in text


def test_owners_get_one_notice_per_campaign_per_hour_across_sweepers(
    settings, engine, mail
) -> None:
    made = setup_orgs(engine)
    add_staff(engine, "second.owner@alpha.example.org", STAFF_PASSWORD, organisation="alpha",
              role="owner")  # fmt: skip
    add_staff(engine, "viewer@alpha.example.org", STAFF_PASSWORD, organisation="alpha",
              role="viewer")  # fmt: skip

    def fail_one(org: str) -> None:
        with engine.begin() as conn:
            record_unwritten(
                conn,
                Unwritten(
                    signature_id=uuid.uuid4(),
                    campaign=made[org].slug,
                    message_id=f"<letter.{uuid.uuid4()}@dearmp.invalid>",
                    recipient="mp@parliament.uk",
                    supporter_key=None,
                    campaign_version=1,
                    reason="line 4: divided by zero",
                ),
                None,
            )

    for _ in range(3):
        fail_one("alpha")
    fail_one("beta")
    # Three sweepers (replicas) at once, then again: one notice per owner and campaign.
    sweepers = [threading.Thread(target=send_problem_notices, args=(make_deps(settings, engine),))
                for _ in range(3)]  # fmt: skip
    for t in sweepers:
        t.start()
    for t in sweepers:
        t.join(60)
    fail_one("alpha")  # later in the same hour: on the pages, no second email
    send_problem_notices(make_deps(settings, engine))
    wait_until(lambda: len(mail.messages) >= 3, 30, 0.2, "three notices")
    to = sorted(str(c.message["X-DearMP-Intended-Recipient"]) for c in mail.messages)
    assert to == [owner("alpha"), owner("beta"), "second.owner@alpha.example.org"], to
    alpha = next(
        c for c in mail.messages if c.message["X-DearMP-Intended-Recipient"] == owner("alpha")
    )
    assert alpha.message["Subject"] == "Letters of Alpha's letters could not be written"
    assert "3 letters of your campaign" in alpha.message.get_body(("plain",)).get_content()
    sent = "SELECT count(*) FROM letters WHERE purpose = :p AND state = 'sent' AND campaign = ''"
    assert scalar(engine, sent, p=PURPOSE) == 3


def staff_client(settings: Any, engine: sa.Engine, org: str) -> TestClient:
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    assert login(client, email=owner(org)).status_code == 303
    return client


def test_the_banner_and_the_failed_page_show_an_organisation_its_own_problems_only(
    settings, engine, amqp_url
) -> None:
    made = setup_orgs(engine)
    with engine.begin() as conn:
        for org, n in (("alpha", 2), ("beta", 1)):
            for _ in range(n):
                record_unwritten(
                    conn,
                    Unwritten(
                        signature_id=uuid.uuid4(),
                        campaign=made[org].slug,
                        message_id=f"<letter.{uuid.uuid4()}@dearmp.invalid>",
                        recipient="mp@parliament.uk",
                        supporter_key=None,
                        campaign_version=1,
                        reason=f"line 4: {org} went wrong for jo@example.org",
                    ),
                    None,
                )
    # A dead letter about each organisation's campaign: by its payload, and by its signature.
    topology = Topology(settings.broker_namespace)
    declare_all(amqp_url, topology, [200])
    beta_signature = signed(engine, made["beta"].slug, "GU11 1AA")
    for event, correlation in (
        (
            SignatureReceived(
                signature_id=uuid.uuid4(),
                campaign=made["alpha"].slug,
                supporter=Supporter(
                    first_name="P", last_name="Q", email="p@example.org", postcode="GU11 1AA"
                ),  # fmt: skip
            ),
            None,
        ),
        (  # names no campaign: found by its signature (the correlation id)
            LetterSent(
                signature_id=beta_signature.signature_id, purpose="letter", message_id="<x@y>"
            ),
            str(beta_signature.signature_id),
        ),
    ):
        envelope = Envelope.wrap(event, correlation_id=correlation)
        publish_raw(
            amqp_url,
            topology.dead_letter_exchange,
            topology.dead_letter_queue("mailer"),
            envelope.to_json(),
            headers={ATTEMPT_HEADER: 3, ERROR_HEADER: f"RuntimeError: {event.TYPE} broke"},
        )
    wait_until(
        lambda: queue_depth(amqp_url, topology.dead_letter_queue("mailer")) == 2, 30, 0.2, "dlq"
    )

    alpha = staff_client(settings, engine, "alpha")
    page = html.unescape(alpha.get("/admin").text)
    assert "2 letters of Alpha's letters could not be written: line 4: alpha went wrong" in page
    assert "Beta's letters" not in page and "beta went wrong" not in page
    assert "jo@example.org" not in page  # addresses masked
    failed = html.unescape(alpha.get("/admin/letters/failed").text)
    assert failed.count("<td>could not be written: line 4: alpha went wrong") == 2  # its rows
    assert "beta went wrong" not in failed
    stuck = failed.split('id="stuck"', 1)[1].split('id="bounces"', 1)[0]
    assert "signature.received" in stuck and "RuntimeError: signature.received broke" in stuck
    assert "letter.sent" not in stuck  # beta's
    assert "/admin/dlq" not in stuck  # replay is for operators
    assert alpha.get("/admin/dlq").status_code == 404

    beta = staff_client(settings, engine, "beta")
    page = html.unescape(beta.get("/admin").text)
    assert "1 letter of Beta's letters could not be written: line 4: beta went wrong" in page
    assert "Alpha's letters" not in page
    stuck = html.unescape(beta.get("/admin/letters/failed").text).split('id="stuck"', 1)[1]
    stuck = stuck.split('id="bounces"', 1)[0]
    assert "letter.sent" in stuck and "signature.received" not in stuck
    assert str(beta_signature.signature_id)[:8] in stuck
    # The listing put every dead letter back.
    assert queue_depth(amqp_url, topology.dead_letter_queue("mailer")) == 2


def test_the_owner_role_read_by_the_mailer_is_the_staff_pages_owner() -> None:
    assert Role.OWNER.value == OWNER_ROLE


def test_a_supporter_whose_details_break_the_letter_can_confirm_so_the_failure_is_seen(
    settings, engine
) -> None:
    """The confirm page writes the letter with the supporter's details: one that fails only for
    them (the samples pass) still offers the button (without the letter), so the signature goes
    on to fail visibly, instead of waiting unconfirmed where the organisation never sees it."""
    campaign = setup_orgs(engine)["alpha"]
    now = datetime.now(UTC)
    row = make_signature_row(campaign=campaign.slug, created_at=now)  # pending, in GU11 1AA
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [row])
    public = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    link = f"/confirm/{make_token(settings.secret_key, 'confirm', str(row['id']))}"
    page = public.get(link)
    assert page.status_code == 200, page.text
    assert "csrf_token" in page.text and "divided_by" not in page.text  # a button, no code
    pressed = public.post(link, data={"csrf_token": csrf_token_in(page.text)})
    assert pressed.status_code in (200, 303), pressed.text
    assert status_of(engine, row["id"]) == "confirmed"
