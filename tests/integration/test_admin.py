"""The staff pages (/admin), in-process against real Postgres (and RabbitMQ for the DLQ page)."""

from __future__ import annotations

import json
import re
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.admin.auth import COOKIE
from services.intake.app import create_app
from services.updates import handlers as updates_handlers
from shared.broker.declare import declare_all
from shared.config import Settings
from shared.messages import Envelope, SignatureConfirmed, Supporter
from shared.topology import Topology
from tests.e2e.test_journey_counts import dashboard_row
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    add_help_request,
    chart_signatures,
    csrf_for,
    login,
    make_staff,
    staff_row,
)
from tests.support import csrf_token_in, make_signature, publish_raw, queue_depth

PAGES = [
    "/admin",
    f"/admin/c/{CAMPAIGN}",
    "/admin/c/no-such-campaign",
    "/admin/letters/failed",
    f"/admin/letters/failed?campaign={CAMPAIGN}",
    "/admin/dlq",
]
TITLE = "Give every trafficked and unaccompanied child a guardian"
FORMS = [
    f"/admin/c/{CAMPAIGN}/updates",
    f"/admin/c/{CAMPAIGN}/help/1/handled",
    "/admin/dlq/mailer/replay",
]


def subscribed_confirmation(n: int) -> SignatureConfirmed:
    """A supporter who confirmed and asked for updates, as intake announces them."""
    signed = make_signature(email=f"subscriber-{n}@example.org", opt_in=True)
    return SignatureConfirmed(
        signature_id=uuid.uuid4(),
        campaign=CAMPAIGN,
        supporter=Supporter(
            first_name=signed["first_name"],
            last_name=signed["last_name"],
            email=signed["email"],
            postcode=signed["postcode"],
            opt_in=True,
        ),
    )


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def signed_in(settings: Settings, engine: sa.Engine) -> TestClient:
    make_staff(engine)
    client = client_for(settings, engine)
    response = login(client)
    assert response.status_code == 303, response.text
    return client


def scalar(engine: sa.Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def publish_form(client: TestClient, action: str, **fields: str) -> dict[str, str]:
    token = csrf_for(client, f"/admin/c/{CAMPAIGN}")
    return {"csrf_token": token, "action": action, **fields}


def assert_refused(response, next_path: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith("/admin/login"), location
    if next_path:
        assert location == f"/admin/login?next={next_path.replace('?', '%3F').replace('=', '%3D')}"
    assert response.text == "" or TITLE not in response.text


def test_nothing_under_admin_is_readable_without_login(settings, engine) -> None:
    add_help_request(engine, message="a secret help request")
    client = client_for(settings, engine)
    for path in PAGES:
        assert_refused(client.get(path, follow_redirects=False), path)
        head = client.head(path, follow_redirects=False)
        assert head.status_code in (303, 405) and head.content == b""
    for path in FORMS:
        assert_refused(client.post(path, data={"title": "x", "body": "y"}, follow_redirects=False))
    # A forged or garbled session cookie is no better.
    client.cookies.set(COOKIE, "forged.value.here", path="/admin")
    for path in PAGES:
        assert_refused(client.get(path, follow_redirects=False))
    # Following the redirect ends on the login page, and shows no data.
    page = client.get(f"/admin/c/{CAMPAIGN}")
    assert page.url.path == "/admin/login"
    assert "Sign in" in page.text and "a secret help request" not in page.text
    assert f'name="next" value="/admin/c/{CAMPAIGN}"' in page.text
    assert scalar(engine, "SELECT count(*) FROM campaign_updates") == 0
    assert scalar(engine, "SELECT count(*) FROM help_requests WHERE handled_at IS NULL") == 1


def test_login_session_cookie_and_logout(settings, engine) -> None:
    make_staff(engine)
    client = client_for(settings, engine)
    page = client.get(f"/admin/login?next=/admin/c/{CAMPAIGN}")
    response = client.post(
        "/admin/login",
        data={
            "csrf_token": csrf_token_in(page.text),
            "email": "  Organiser@Example.org ",
            "password": STAFF_PASSWORD,
            "next": f"/admin/c/{CAMPAIGN}",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == f"/admin/c/{CAMPAIGN}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin", "Max-Age="):
        assert attribute.lower() in cookie.lower(), cookie
    # The server keeps only a hash of the session token.
    token_hash = scalar(engine, "SELECT token_hash FROM staff_sessions")
    assert str(token_hash) not in cookie

    dashboard = client.get("/admin")
    assert dashboard.status_code == 200
    assert TITLE in dashboard.text and STAFF_EMAIL in dashboard.text
    assert dashboard.headers["cache-control"] == "no-store"
    assert dashboard.headers["x-frame-options"] == "DENY"
    assert client.get("/admin/login", follow_redirects=False).headers["location"] == "/admin"

    # No open redirect after login.
    for evil in ("https://evil.example/", "//evil.example/admin", "/c/guardians-for-children"):
        again = client_for(settings, engine)
        login_page = again.get("/admin/login")
        done = again.post(
            "/admin/login",
            data={
                "csrf_token": csrf_token_in(login_page.text),
                "email": STAFF_EMAIL,
                "password": STAFF_PASSWORD,
                "next": evil,
            },
            follow_redirects=False,
        )
        assert done.headers["location"] == "/admin", evil

    old_cookie = client.cookies.get(COOKIE)
    assert client.post("/admin/logout", data={}).status_code == 400  # CSRF needed
    assert client.get("/admin", follow_redirects=False).status_code == 200
    out = client.post(
        "/admin/logout", data={"csrf_token": csrf_for(client)}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert_refused(client.get("/admin", follow_redirects=False))
    # The old cookie, replayed, opens nothing: the session row is gone.
    replay = client_for(settings, engine)
    replay.cookies.set(COOKIE, old_cookie, path="/admin")
    assert_refused(replay.get("/admin", follow_redirects=False))


def test_wrong_passwords_read_the_same_for_any_address(settings, engine) -> None:
    """Wrong passwords never lock an account (they slow down the place they come from:
    tests/integration/test_staff_login_throttle.py); the refusal never says whether the account
    exists, and the right password still works afterwards."""
    make_staff(engine)
    client = client_for(settings, engine)
    unknown = login(client, email="nobody@example.org", password="whatever it is")
    assert unknown.status_code == 401
    message = re.search(r'<p id="email-error"[^>]*>(.*?)</p>', unknown.text, re.S)
    assert message is not None
    for attempt in range(3):
        wrong = login(client, password=f"wrong password {attempt}")
        assert wrong.status_code == 401
        assert message.group(1) in wrong.text  # the same words as for no account
        assert COOKIE not in wrong.headers.get("set-cookie", "")
    assert login(client).status_code == 303


def test_admin_forms_need_the_csrf_token(settings, engine) -> None:
    client = signed_in(settings, engine)
    help_id = add_help_request(engine)
    fields = {"title": "Hello", "body": "World", "action": "publish"}
    for token in (None, "", "forged-token"):
        data = dict(fields) if token is None else {**fields, "csrf_token": token}
        refused = client.post(f"/admin/c/{CAMPAIGN}/updates", data=data)
        assert refused.status_code == 400 and "The form has expired" in refused.text
        refused = client.post(f"/admin/c/{CAMPAIGN}/help/{help_id}/handled", data=data)
        assert refused.status_code == 400
        assert client.post("/admin/dlq/mailer/replay", data=data).status_code == 400
    # A token from another visitor's cookie does not fit this one.
    other = client_for(settings, engine)
    foreign = csrf_token_in(other.get("/admin/login").text)
    assert (
        client.post(
            f"/admin/c/{CAMPAIGN}/updates", data={**fields, "csrf_token": foreign}
        ).status_code
        == 400
    )
    # The login form too.
    fresh = client_for(settings, engine)
    fresh.get("/admin/login")
    assert (
        fresh.post(
            "/admin/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD}
        ).status_code
        == 400
    )
    assert scalar(engine, "SELECT count(*) FROM campaign_updates") == 0
    assert scalar(engine, "SELECT count(*) FROM help_requests WHERE handled_at IS NULL") == 1
    # With the token, the same forms work.
    done = client.post(
        f"/admin/c/{CAMPAIGN}/help/{help_id}/handled",
        data={"csrf_token": csrf_for(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert scalar(engine, "SELECT count(*) FROM help_requests WHERE handled_at IS NULL") == 0


def test_publish_shows_update_on_campaign_page_and_emails_only_when_ticked(
    settings, engine
) -> None:
    client = signed_in(settings, engine)
    form = publish_form(
        client, "publish", title="We met the minister", body="It went **well**.\n\nMore soon."
    )
    done = client.post(f"/admin/c/{CAMPAIGN}/updates", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/c/{CAMPAIGN}?published=1#updates"
    assert "Update #1 is published." in client.get(done.headers["location"]).text
    public = client.get(f"/c/{CAMPAIGN}").text
    assert "Update #1" in public and "We met the minister" in public
    assert "<strong>well</strong>" in public
    assert scalar(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'update.published'") == 0
    assert scalar(engine, "SELECT emailed FROM campaign_updates WHERE number = 1") is False

    form = publish_form(
        client, "publish", title="Second", body="Please write again.", email_subscribers="yes"
    )
    done = client.post(f"/admin/c/{CAMPAIGN}/updates", data=form, follow_redirects=False)
    assert done.headers["location"] == f"/admin/c/{CAMPAIGN}?published=2#updates"
    # A double-clicked Publish does not publish twice.
    again = client.post(f"/admin/c/{CAMPAIGN}/updates", data=form, follow_redirects=False)
    assert again.headers["location"] == f"/admin/c/{CAMPAIGN}?published=2#updates"
    assert "Update #2" in client.get(f"/c/{CAMPAIGN}").text
    with engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT body FROM outbox WHERE routing_key = 'update.published'")
        ).all()
        updates = conn.execute(
            sa.text("SELECT number, emailed FROM campaign_updates ORDER BY number")
        ).all()
    assert [tuple(u) for u in updates] == [(1, False), (2, True)]
    assert len(events) == 1
    envelope = json.loads(bytes(events[0].body))
    assert envelope["type"] == "update.published"
    assert envelope["payload"] == {"campaign": CAMPAIGN, "update_number": 2, "title": "Second"}
    page = client.get(f"/admin/c/{CAMPAIGN}").text
    assert "(waiting to start)" in page  # emailed, but the updates service has not begun yet
    # Three subscribers, and the update.published event handled by the updates service's own
    # handler: the page shows the fan-out job that handler recorded.
    handle = updates_handlers.bootstrap(settings, engine)
    for n in range(3):
        handle(Envelope.wrap(subscribed_confirmation(n), correlation_id=uuid.uuid4()))
    handle(Envelope.model_validate_json(bytes(events[0].body)))
    assert "running: 0 sent of 3 (0%)" in client.get(f"/admin/c/{CAMPAIGN}").text

    # Missing fields: the GOV.UK error pattern, and nothing published.
    empty = client.post(
        f"/admin/c/{CAMPAIGN}/updates", data=publish_form(client, "publish", title="", body="")
    )
    assert empty.status_code == 400
    assert "Enter a title" in empty.text and "Enter the update" in empty.text
    assert scalar(engine, "SELECT count(*) FROM campaign_updates") == 2


def test_preview_renders_markdown_without_running_html(settings, engine) -> None:
    client = signed_in(settings, engine)
    body = (
        "Some **bold** news and [a link](https://example.org/more).\n\n"
        "<script>alert('body')</script>\n\n"
        '<img src=x onerror="alert(1)">\n\n'
        "[click](javascript:alert(2))"
    )
    title = "<script>alert('title')</script>"
    preview = client.post(
        f"/admin/c/{CAMPAIGN}/updates", data=publish_form(client, "preview", title=title, body=body)
    )
    assert preview.status_code == 200
    html = preview.text
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.org/more">a link</a>' in html
    assert "<script>alert" not in html
    assert (
        "&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in html or "&lt;script&gt;" in html
    )
    assert "<img" not in html and 'onerror="alert' not in html
    assert 'href="javascript:' not in html
    # The draft is kept in the form, escaped.
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in html
    assert scalar(engine, "SELECT count(*) FROM campaign_updates") == 0


def test_send_a_test_to_me_goes_to_the_sandbox_with_the_staff_address(
    settings, engine, mail
) -> None:
    client = signed_in(settings, engine)
    page = client.post(
        f"/admin/c/{CAMPAIGN}/updates",
        data=publish_form(client, "test", title="Trial run", body="Hello *there*."),
    )
    assert page.status_code == 200 and "A test was sent to the sandbox" in page.text
    caught = mail.handler.wait_for(1, timeout=30)  # type: ignore[attr-defined]
    message = caught[0].message
    assert caught[0].rcpt_tos == [settings.sandbox_to]
    assert message["X-DearMP-Intended-Recipient"] == STAFF_EMAIL
    assert message["Subject"] == "[Test] Update #1: Trial run"
    assert "<em>there</em>" in message.get_body(("html",)).get_content()
    assert scalar(engine, "SELECT count(*) FROM campaign_updates") == 0


def test_campaign_page_has_charts_counts_help_and_failed_letters(settings, engine) -> None:
    client = signed_in(settings, engine)
    total = chart_signatures(engine)
    help_id = add_help_request(engine, message="I live abroad; can I sign?")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE letters SET error = '550 unknown user jo.bloggs@example.org' "
                "WHERE state = 'failed'"
            )
        )
        conn.execute(sa.text("UPDATE letters SET recipient = 'jo.bloggs@example.org'"))
    page = client.get(f"/admin/c/{CAMPAIGN}")
    assert page.status_code == 200
    html = page.text
    # The charts: inline SVG, named and described, with the figures also in a table.
    assert html.count('role="img"') == 4  # per hour, per day, letters, the constituency map
    assert '<title id="signatures-chart-title">Signatures per hour, last 48 hours</title>' in html
    assert f"{total:,} received" in html
    assert 'aria-labelledby="letters-chart-title letters-chart-desc"' in html
    assert "<caption>Signatures per hour, last 48 hours (UK time)</caption>" in html
    assert "<script" not in html
    assert "Aldershot" in html and "Sevenoaks" in html
    assert "I live abroad; can I sign?" in html
    # The dashboard has the counts by status: the confirmed rows' letters went (chart_signatures
    # marks them sent), the others wait for confirmation.
    with engine.connect() as conn:
        confirmed, pending = conn.execute(
            sa.text(
                "SELECT count(confirmed_at), count(*) - count(confirmed_at) FROM signatures "
                "WHERE campaign = :c"
            ),
            {"c": CAMPAIGN},
        ).one()
    assert confirmed and pending
    row = dashboard_row(client.get("/admin").text, CAMPAIGN)
    assert row["Confirmed"] == confirmed == row["Letter sent"]
    assert row["Waiting to confirm"] == pending
    assert row["Letter failed"] == 0 and row["Erased before confirming"] == 0

    # Mark the help request handled.
    done = client.post(
        f"/admin/c/{CAMPAIGN}/help/{help_id}/handled",
        data={"csrf_token": csrf_token_in(html)},
        follow_redirects=True,
    )
    assert "The help request is marked as handled." in done.text
    assert "I live abroad; can I sign?" not in done.text

    failed = client.get("/admin/letters/failed").text
    assert "550 unknown user" in failed
    assert "jo.bloggs@example.org" not in failed and "j***@example.org" in failed


def test_campaign_without_data_and_unknown_campaign(settings, engine) -> None:
    client = signed_in(settings, engine)
    page = client.get("/admin/c/specialist-support-for-child-victims")
    assert page.status_code == 200 and "0 received" in page.text
    assert client.get("/admin/c/no-such-campaign").status_code == 404


def test_dead_letter_page_lists_and_replays(settings, engine, amqp_url, namespace) -> None:
    topology = Topology(namespace)
    declare_all(amqp_url, topology, settings.retry_delays)
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {"id": event_id, "type": "signature.received", "version": 9, "payload": {"email": "x@y.z"}}
    ).encode()
    publish_raw(
        amqp_url,
        topology.dead_letter_exchange,
        topology.dead_letter_queue("mailer"),
        body,
        headers={"x-dearmp-attempt": 3, "x-dearmp-error": "UnknownEvent: signature.received v9"},
    )
    client = signed_in(settings, engine)
    page = client.get("/admin/dlq")
    assert page.status_code == 200
    assert event_id in page.text and "UnknownEvent: signature.received v9" in page.text
    assert "x@y.z" not in page.text  # never the payload
    assert queue_depth(amqp_url, topology.dead_letter_queue("mailer")) == 1  # looking moves nothing
    done = client.post("/admin/dlq/mailer/replay", data={"csrf_token": csrf_token_in(page.text)})
    assert done.status_code == 200
    assert "1 messages moved from the mailer dead-letter queue" in done.text
    assert queue_depth(amqp_url, topology.dead_letter_queue("mailer")) == 0
    assert queue_depth(amqp_url, topology.queue("mailer")) == 1


def test_staff_add_command(settings, engine, database_url) -> None:
    from typer.testing import CliRunner

    from services.ops.cli import app

    env = {"DEARMP_DATABASE_URL": database_url}
    runner = CliRunner()
    added = runner.invoke(
        app, ["staff", "add", "New.Person@Example.org"], input=f"{STAFF_PASSWORD}\n" * 2, env=env
    )
    assert added.exit_code == 0, added.output
    assert added.output.strip().splitlines()[-1] == "added staff account new.person@example.org"
    assert STAFF_PASSWORD not in added.output  # the prompt hides what is typed
    row = staff_row(engine, "new.person@example.org")
    assert row.password_hash.startswith("$argon2id$") and STAFF_PASSWORD not in row.password_hash
    assert login(client_for(settings, engine), email="new.person@example.org").status_code == 303

    # The prompt asks twice, and the two must match.
    mismatch = runner.invoke(
        app, ["staff", "add", "other@example.org"], input="first password 1\nsecond password 2\n"
    )
    assert mismatch.exit_code != 0
    # Scripts pipe it in; mistakes are one line and a non-zero exit.
    cases = {
        ("staff", "add", "x@example.org", "--password-stdin"): ("short\n", "at least 12"),
        ("staff", "add", "not-an-email", "--password-stdin"): (
            f"{STAFF_PASSWORD}\n",
            "not an email address",
        ),
        ("staff", "add", "new.person@example.org", "--password-stdin"): (
            f"{STAFF_PASSWORD}\n",
            "already has an account",
        ),
    }
    for args, (typed, expected) in cases.items():
        result = runner.invoke(app, list(args), input=typed, env=env)
        assert result.exit_code != 0, args
        assert expected in result.output and len(result.output.strip().splitlines()) == 1
    # --update sets a new password and ends its sessions.
    new_password = "another long passphrase"
    updated = runner.invoke(
        app,
        ["staff", "add", "new.person@example.org", "--password-stdin", "--update"],
        input=f"{new_password}\n",
        env=env,
    )
    assert updated.exit_code == 0, updated.output
    assert scalar(engine, "SELECT count(*) FROM staff_sessions") == 0
    fresh = client_for(settings, engine)
    assert login(fresh, email="new.person@example.org", password=new_password).status_code == 303


def test_staff_pages_answer_bad_input_with_a_4xx_never_a_500(settings, engine) -> None:
    """A NUL byte in the login email and an id out of the database's range were 500s; now each
    is a 4xx page that says what happened, and nothing changes."""
    make_staff(engine)
    client = client_for(settings, engine)
    page = client.get("/admin/login")
    nul = client.post(
        "/admin/login",
        data={
            "email": "jo\x00@example.org",
            "password": "x",
            "csrf_token": csrf_token_in(page.text),
        },
    )
    assert nul.status_code == 400 and "could not be used" in nul.text
    login(client)
    token = csrf_for(client)
    for request_id in ("99999999999999999999999", "-1", "abc"):
        answer = client.post(
            f"/admin/c/{CAMPAIGN}/help/{request_id}/handled", data={"csrf_token": token}
        )
        assert 200 <= answer.status_code < 500, (request_id, answer.status_code)
    assert client.get("/admin/c/" + "a" * 500).status_code == 404


def test_staff_see_everything_held_about_one_person(settings, engine) -> None:
    """Subject access from the staff pages: the address is POSTed (never in a URL), and the page
    lists that person's signatures and help requests, nobody else's."""
    from datetime import UTC, datetime

    from services.intake.models import signatures
    from tests.integration.admin_helpers import make_signature_row

    make_staff(engine)
    now = datetime.now(UTC)
    theirs = {**make_signature_row(created_at=now, email="sam.helper@example.org")}
    theirs["first_name"] = "Samwise"
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [theirs, make_signature_row(created_at=now)])
    add_help_request(engine)
    client = client_for(settings, engine)
    login(client)
    page = client.get("/admin/supporters")
    assert page.status_code == 200 and 'action="/admin/supporters"' in page.text
    token = csrf_token_in(page.text)
    shown = client.post(
        "/admin/supporters", data={"csrf_token": token, "email": "Sam.Helper@example.org"}
    )
    assert shown.status_code == 200
    assert "Signatures (1)" in shown.text and "Samwise" in shown.text
    assert "Help requests (1)" in shown.text and "The form says my postcode is wrong." in shown.text
    assert "Emails (0)" in shown.text and "Subscriptions (0)" in shown.text
    bad = client.post("/admin/supporters", data={"csrf_token": token, "email": "nobody"})
    assert bad.status_code == 400 and "Enter the email address" in bad.text
    expired = client.post("/admin/supporters", data={"email": "sam.helper@example.org"})
    assert expired.status_code == 400 and "Samwise" not in expired.text
