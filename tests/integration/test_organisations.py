"""Organisations (issue 18): one organisation's staff cannot read or change another's campaigns,
supporters, letters or accounts by any staff URL; roles; the migration; the commands.

The isolation test walks every route of the app under /admin, so a route added later is
covered (and a new kind of path parameter makes it fail until the test knows how to fill it).
In-process (TestClient) against real Postgres: no services started.
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.intake.admin.accounts import add_staff
from services.intake.app import create_app
from services.intake.models import signatures
from services.mailer.models import letters
from shared.config import Settings
from shared.organisations import checked, save_organisation
from shared.reference import campaigns
from shared.webhooks import add_endpoint
from tests.integration.admin_helpers import (
    STAFF_PASSWORD,
    add_help_request,
    csrf_for,
    login,
    make_signature_row,
)
from tests.support import ROOT, csrf_token_in, make_signature

# Campaign A (organisation alpha) is the one the other organisation (beta) must never reach.
A, B = "guardians-for-children", "specialist-support-for-child-victims"
A_TITLE = "Give every trafficked and unaccompanied child a guardian"
A_SUPPORTER = "alpha.supporter@example.org"
A_HELP = "a help request only alpha may read"
A_FAILURE = "550 alpha-only mailbox unknown"
ACCOUNTS = {
    "alpha-owner@example.org": ("alpha", "owner"),
    "alpha-editor@example.org": ("alpha", "editor"),
    "alpha-viewer@example.org": ("alpha", "viewer"),
    "beta-owner@example.org": ("beta", "owner"),
    "beta-viewer@example.org": ("beta", "viewer"),
}
A_NAME = "Alphonsine"
MISSING = {
    "slug": "no-such-campaign",
    "request_id": "987654",
    "account_id": "987654",
    "service": "x",
    "endpoint_id": "987654",
}
ALPHA_SECRETS = (
    A_TITLE,
    A_SUPPORTER,
    A_NAME,
    A_HELP,
    "alpha-only",
    "alpha-owner@",
    "alpha-editor@",
)


def two_organisations(engine: sa.Engine) -> dict[str, Any]:
    """alpha runs A (with a supporter, a help request and a failed letter), beta runs B; each
    has accounts. Returns the ids the routes take."""
    with engine.begin() as conn:
        for slug in ("alpha", "beta"):
            org = checked(slug=slug, name=slug.title(), privacy_url="https://example.org/privacy")
            save_organisation(conn, org)
        for campaign, org in ((A, "alpha"), (B, "beta")):
            conn.execute(
                campaigns.update().where(campaigns.c.slug == campaign).values(organisation=org)
            )
        now = datetime.now(UTC)
        row = make_signature_row(campaign=A, created_at=now, confirmed_at=now, email=A_SUPPORTER)
        row["first_name"] = A_NAME
        conn.execute(signatures.insert(), [row, make_signature_row(campaign=B, created_at=now)])
        conn.execute(
            letters.insert().values(
                signature_id=row["id"],
                purpose="letter",
                campaign=A,
                state="failed",
                message_id=f"<{uuid.uuid4()}@dearmp.invalid>",
                recipient="alex.demo.mp@demo-parliament.invalid",
                subject="Please act",
                created_at=now,
                sent_at=now,
                error=A_FAILURE,
            )
        )
    for email, (org, role) in ACCOUNTS.items():
        add_staff(engine, email, STAFF_PASSWORD, organisation=org, role=role)
    help_id = add_help_request(engine, campaign=A, message=A_HELP, email=A_SUPPORTER)
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT email, id FROM staff")).all())
    return {"help_id": help_id, "ids": ids}


def client_as(settings: Settings, engine: sa.Engine, email: str) -> TestClient:
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    assert login(client, email=email).status_code == 303
    return client


def routes_of(routes: list[Any], prefix: str = "") -> list[APIRoute | tuple[str, APIRoute]]:
    """Every APIRoute, with its prefix, inside routers included in the app (FastAPI keeps an
    included router whole, as ``original_router``, since 0.1xx; earlier, its routes flat)."""
    found: list[Any] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((prefix, route))
        elif (inner := getattr(route, "original_router", None)) is not None:
            context = getattr(route, "include_context", None)
            found += routes_of(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
    return found


def admin_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every staff route but signing in and out."""
    found = []
    for prefix, route in routes_of(client.app.routes):  # type: ignore[attr-defined, misc]
        path = prefix + route.path
        if not path.startswith("/admin") or path in ("/admin/login", "/admin/logout"):
            continue
        found += [(method, path) for method in sorted(route.methods - {"HEAD"})]
    return found


def fill(path: str, values: dict[str, str]) -> str:
    names = re.findall(r"{(\w+)}", path)
    unknown = [n for n in names if n not in values]
    assert not unknown, f"{path}: the isolation test does not know what to put in {unknown}"
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


def ask(client: TestClient, method: str, url: str, form: dict[str, str]) -> Any:
    if method == "GET":
        return client.get(url)
    return client.request(method, url, data=form, follow_redirects=False)


def state(engine: sa.Engine) -> tuple[Any, ...]:
    """Everything a staff POST could change."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.text(sql)).all()
            for sql in (
                "SELECT campaign, number, title FROM campaign_updates ORDER BY 1, 2",
                "SELECT id, handled_at FROM help_requests ORDER BY id",
                "SELECT email, role, organisation, password_hash FROM staff ORDER BY email",
                "SELECT slug, organisation, definition FROM campaigns ORDER BY slug",
                "SELECT count(*) FROM outbox",
                "SELECT id, organisation, url FROM webhook_endpoints ORDER BY id",
            )
        )


def test_no_staff_url_reaches_another_organisations_data(settings, engine) -> None:
    made = two_organisations(engine)
    with engine.begin() as conn:
        hook, _secret = add_endpoint(conn, "alpha", "https://alpha-only.example.org/hook")
    foreign = {
        "slug": A,
        "request_id": str(made["help_id"]),
        "account_id": str(made["ids"]["alpha-viewer@example.org"]),
        "service": "mailer",
        "endpoint_id": str(hook.id),
    }
    before = state(engine)
    for email in ("beta-owner@example.org", "beta-viewer@example.org"):
        client = client_as(settings, engine, email)
        token = csrf_for(client)
        routes = admin_routes(client)
        assert ("GET", "/admin/c/{slug}") in routes and ("POST", "/admin/accounts") in routes
        form = {
            "csrf_token": token,
            "email": A_SUPPORTER,
            "title": "Hijacked",
            "body": "Hijacked",
            "action": "publish",
            "email_subscribers": "yes",
        }

        for method, path in routes:
            url = fill(path, foreign)
            answer = ask(client, method, url, form)
            if method == "GET":
                queried = client.get(f"{url}?campaign={A}")
                assert queried.status_code in (200, 403, 404), (url, queried.status_code)
                assert not any(s in queried.text for s in ALPHA_SECRETS), (email, url, "?campaign")
            if "{" in path:
                # About one thing of alpha's: answered exactly as for a thing that does not
                # exist (not found; or, when the role may not do it at all, refused either way).
                missing = ask(client, method, fill(path, MISSING), form)
                assert answer.status_code in (403, 404), (email, method, url, answer.status_code)
                assert answer.status_code == missing.status_code, (email, method, url)
            elif path == "/admin/dlq":
                assert answer.status_code == 404, (email, url)  # operators only
            else:
                assert answer.status_code < 500, (email, method, url, answer.status_code)
            # A form may show back the address typed into it; nothing else of alpha's.
            shown_back = A_SUPPORTER if method == "POST" else None
            leaked = [s for s in ALPHA_SECRETS if s in answer.text and s != shown_back]
            assert not leaked, (email, method, url, leaked)
        # Not vacuous: the same pages work for beta's own campaign.
        own = client.get(f"/admin/c/{B}")
        assert own.status_code == 200 and "Specialist support" in own.text
        foreign_page, missing_page = (
            client.get(f"/admin/c/{A}"),
            client.get("/admin/c/no-such-thing"),
        )
        assert without_tokens(foreign_page.text) == without_tokens(missing_page.text)
    assert state(engine) == before


def without_tokens(page: str) -> str:
    """The page with its CSRF token blanked: a token carries the second it was made in, so two
    pages asked for a moment apart differ there even when they say the same."""
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)


def test_roles_viewer_reads_editor_edits_owner_manages_accounts(settings, engine) -> None:
    made = two_organisations(engine)
    ids = made["ids"]

    viewer = client_as(settings, engine, "alpha-viewer@example.org")
    page = viewer.get(f"/admin/c/{A}")
    assert page.status_code == 200 and A_HELP in page.text
    assert "Mark handled" not in page.text and "Publish" not in page.text
    token = csrf_for(viewer)
    refused = [
        viewer.post(f"/admin/c/{A}/updates", data={"csrf_token": token, "action": "publish"}),
        viewer.post(f"/admin/c/{A}/help/{made['help_id']}/handled", data={"csrf_token": token}),
        viewer.get("/admin/accounts"),
        viewer.post("/admin/accounts", data={"csrf_token": token, "email": "x@example.org"}),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert "Viewer: read" in refused[0].text
    assert viewer.get("/admin/dlq").status_code == 404  # operators' page: not found

    editor = client_as(settings, engine, "alpha-editor@example.org")
    form = {"csrf_token": csrf_for(editor), "action": "publish", "title": "News", "body": "Hi"}
    published = editor.post(f"/admin/c/{A}/updates", data=form, follow_redirects=False)
    assert published.status_code == 303
    assert editor.get("/admin/accounts").status_code == 403
    assert "/admin/accounts" not in editor.get("/admin").text

    owner = client_as(settings, engine, "alpha-owner@example.org")
    listed = owner.get("/admin/accounts")
    assert listed.status_code == 200
    assert "alpha-viewer@example.org" in listed.text and "beta-owner@example.org" not in listed.text
    token = csrf_token = csrf_for(owner, "/admin/accounts")
    bad = owner.post(
        "/admin/accounts",
        data={"csrf_token": token, "email": "nope", "role": "boss", "password": "short"},
    )
    assert bad.status_code == 400
    for message in ("Enter their email address", "Choose what the account may do", "at least 12"):
        assert message in bad.text
    added = owner.post(
        "/admin/accounts",
        data={
            "csrf_token": csrf_token,
            "email": "New.Editor@example.org",
            "role": "editor",
            "organisation": "beta",  # ignored: an owner adds to their own organisation
            "password": STAFF_PASSWORD,
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    newcomer = client_as(settings, engine, "new.editor@example.org")
    assert newcomer.get(f"/admin/c/{A}").status_code == 200
    assert newcomer.get(f"/admin/c/{B}").status_code == 404
    # Another organisation's account is "not found"; one's own cannot be removed.
    remove = "/admin/accounts/{}/remove"
    beta = owner.post(remove.format(ids["beta-owner@example.org"]), data={"csrf_token": token})
    assert beta.status_code == 404
    own = owner.post(remove.format(ids["alpha-owner@example.org"]), data={"csrf_token": token})
    assert own.status_code == 400 and "cannot remove your own account" in own.text
    gone = owner.post(
        remove.format(ids["alpha-viewer@example.org"]),
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    # The removed account's session has ended.
    assert viewer.get("/admin", follow_redirects=False).status_code == 303
    with engine.connect() as conn:
        left = set(conn.execute(sa.text("SELECT email FROM staff")).scalars())
    assert "alpha-viewer@example.org" not in left and "beta-owner@example.org" in left


def test_failed_letters_and_subject_access_are_the_organisations_own(settings, engine) -> None:
    two_organisations(engine)
    alpha = client_as(settings, engine, "alpha-viewer@example.org")
    assert A_FAILURE in alpha.get("/admin/letters/failed").text
    page = alpha.get("/admin/supporters")
    shown = alpha.post(
        "/admin/supporters", data={"csrf_token": csrf_for(alpha), "email": A_SUPPORTER}
    )
    assert page.status_code == 200 and "Signatures (1)" in shown.text and A_HELP in shown.text
    beta = client_as(settings, engine, "beta-viewer@example.org")
    nothing = beta.post(
        "/admin/supporters", data={"csrf_token": csrf_for(beta), "email": A_SUPPORTER}
    )
    assert "Signatures (0)" in nothing.text and "Help requests (0)" in nothing.text
    assert A_FAILURE not in beta.get("/admin/letters/failed").text


def test_migration_0013_down_and_up(engine, database_url) -> None:
    from alembic import command

    from shared.db import alembic_config, upgrade

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO staff (email, password_hash, created_at, role) "
                "VALUES ('op@example.org', 'x', now(), 'operator')"
            )
        )
    engine.dispose()
    command.downgrade(alembic_config(database_url), "0012")
    with engine.connect() as conn:
        columns = set(
            conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'staff'"
                )
            ).scalars()
        )
        assert "role" not in columns and "organisation" not in columns
    upgrade(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT role, organisation FROM staff")).all() == [
            ("operator", None)
        ]
        orgs = conn.execute(sa.text("SELECT DISTINCT organisation FROM campaigns")).scalars()
        assert list(orgs) == ["dear-mp"]
        # A role outside the list, or an organisation's role without one, cannot be stored.
        for role, org in (("boss", None), ("owner", None), ("operator", "dear-mp")):
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.text(
                            "INSERT INTO staff (email, password_hash, created_at, role, "
                            "organisation) VALUES (:e, 'x', now(), :r, :o)"
                        ),
                        {"e": f"{role}@example.org", "r": role, "o": org},
                    )
            except sa.exc.IntegrityError:
                continue
            raise AssertionError(f"stored a {role} of {org}")


def test_orgs_and_staff_commands(engine, database_url, tmp_path) -> None:
    from typer.testing import CliRunner

    from services.ops.cli import app

    env = {"DEARMP_DATABASE_URL": database_url}
    runner = CliRunner()

    def run(*args: str, typed: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=typed, env=env)

    added = run(
        "orgs", "add", "ecpat-uk", "--name", "ECPAT UK", "--privacy-url",
        "https://example.org/privacy", "--colour", "#1d70b8",
        "--list-opt-in", "Send me news from ECPAT UK",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.strip() == "added organisation ecpat-uk: ECPAT UK"
    with engine.connect() as conn:
        sender = conn.execute(
            sa.text("SELECT sender_name FROM organisations WHERE slug = 'ecpat-uk'")
        ).scalar_one()
    assert sender == "ECPAT UK via Dear MP"
    listed = run("orgs", "list")
    assert "dear-mp  Dear MP  campaigns=2" in listed.output
    assert "ecpat-uk  ECPAT UK  campaigns=0" in listed.output

    mistakes = {
        ("orgs", "add", "Bad Slug", "--name", "X", "--privacy-url", "https://x.org/p"): "slug",
        ("orgs", "add", "nopriv", "--name", "X"): "privacy notice",
        ("orgs", "add", "col", "--name", "X", "--privacy-url", "/p", "--colour", "blue"): "#",
        ("orgs", "add", "web", "--name", "X", "--privacy-url", "/p", "--website", "http://x.org"): (
            "https://"
        ),
        ("orgs", "add", "ecpat-uk", "--name", "Again", "--privacy-url", "/p"): "already exists",
        ("staff", "add", "a@example.org", "--password-stdin", "--org", "nowhere"): (
            "no organisation 'nowhere'"
        ),
        ("staff", "add", "a@example.org", "--password-stdin", "--role", "owner"): "--org",
        (
            "staff",
            "add",
            "a@example.org",
            "--password-stdin",
            "--org",
            "ecpat-uk",
            "--role",
            "god",
        ): ("not a role"),
        ("staff", "remove", "nobody@example.org"): "no staff account",
    }
    for args, expected in mistakes.items():
        result = run(*args, typed=f"{STAFF_PASSWORD}\n")
        assert result.exit_code != 0, args
        assert expected in result.output and len(result.output.strip().splitlines()) == 1, (
            args,
            result.output,
        )
    owner = run(
        "staff", "add", "Owner@Example.org", "--password-stdin", "--org", "ecpat-uk",
        "--role", "owner", typed=f"{STAFF_PASSWORD}\n",
    )  # fmt: skip
    assert owner.exit_code == 0, owner.output
    assert owner.output.strip() == "added staff account owner@example.org in ecpat-uk as owner"
    assert "owner@example.org  ecpat-uk  owner" in run("staff", "list").output
    assert run("staff", "list", "--org", "dear-mp").output.strip() == "no staff accounts in dear-mp"

    # A campaign file names its organisation; an unknown one is refused, nothing loaded.
    text = (ROOT / "campaigns" / "guardians-for-children.yaml").read_text(encoding="utf-8")
    moved = tmp_path / "moved.yaml"
    moved.write_text(text + "\norganisation: nowhere\n", encoding="utf-8")
    refused = run("campaigns", "load", str(moved))
    assert refused.exit_code != 0 and "no organisation 'nowhere'" in refused.output
    moved.write_text(text + "\norganisation: ecpat-uk\n", encoding="utf-8")
    assert run("campaigns", "load", str(moved)).exit_code == 0
    assert "ecpat-uk  ECPAT UK  campaigns=1" in run("orgs", "list").output
    # Loading the file again without the line keeps it where it is.
    moved.write_text(text, encoding="utf-8")
    assert run("campaigns", "load", str(moved)).exit_code == 0
    assert "ecpat-uk  ECPAT UK  campaigns=1" in run("orgs", "list").output

    # The organisation's only owner stays until it has another.
    kept = run("staff", "remove", "owner@example.org")
    assert kept.exit_code != 0 and len(kept.output.strip().splitlines()) == 1
    assert "owner@example.org is the last owner of ecpat-uk" in kept.output
    run(
        "staff", "add", "second@example.org", "--password-stdin", "--org", "ecpat-uk",
        "--role", "owner", typed=f"{STAFF_PASSWORD}\n",
    )  # fmt: skip
    removed = run("staff", "remove", "owner@example.org")
    assert removed.exit_code == 0 and "removed staff account owner@example.org" in removed.output


def test_own_list_opt_in_is_a_separate_unticked_consent_stored_with_its_words(
    settings, engine
) -> None:
    wording = "Send me news of ECPAT UK's work by email"
    with engine.begin() as conn:
        save_organisation(
            conn,
            checked(slug="ecpat", name="ECPAT UK", privacy_url="/p", list_opt_in=wording),
        )
        conn.execute(campaigns.update().where(campaigns.c.slug == A).values(organisation="ecpat"))
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    page = client.get(f"/c/{A}")
    box = re.search(r'<input[^>]*id="org_opt_in"[^>]*>', page.text)
    assert box and "checked" not in box.group(0) and wording in html.unescape(page.text)
    assert "News from ECPAT UK" in page.text
    assert 'id="org_opt_in"' not in client.get(f"/c/{B}").text  # its organisation offers none

    def sign(slug: str, **extra: str) -> Any:
        signature = make_signature()
        form = {k: str(v) for k, v in signature.items() if k not in ("opt_in", "consent")}
        token = csrf_token_in(client.get(f"/c/{slug}").text)
        form.update({"consent": "yes", "csrf_token": token, **extra})
        answer = client.post(f"/c/{slug}/sign", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text[:500]
        with engine.connect() as conn:
            return conn.execute(
                sa.select(
                    signatures.c.opt_in,
                    signatures.c.org_opt_in_wording,
                    signatures.c.org_opt_in_at,
                    signatures.c.created_at,
                ).where(signatures.c.email == signature["email"])
            ).one()

    ticked = sign(A, org_opt_in="yes")
    assert ticked.org_opt_in_wording == wording and ticked.org_opt_in_at == ticked.created_at
    assert ticked.opt_in is False  # the campaign's updates are another consent
    assert sign(A).org_opt_in_wording is None
    # An organisation that stops offering it: a box sent anyway records nothing.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE organisations SET list_opt_in = '' WHERE slug = 'ecpat'"))
    assert sign(A, org_opt_in="yes").org_opt_in_at is None
