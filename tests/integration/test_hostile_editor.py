"""A hostile (or careless) editor cannot hurt another organisation or break a page (issue 25):
a letter that cannot be written is refused at its field when saved or opened; one stored before
that rule leaves the public page and the API working, without template code; two
organisations creating the same address at once cannot take each other's campaign; links shown
to supporters are https:// or our own; a campaign file nested thousands deep is a clear 400.

In-process: the app through TestClient, real PostgreSQL.
"""

from __future__ import annotations

import html
import threading
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.admin.accounts import add_staff
from services.intake.app import create_app
from shared.campaigns import Campaign, save_campaign
from shared.config import Settings
from shared.organisations import checked, save_organisation
from shared.tokens import make_token
from tests.integration.admin_helpers import STAFF_PASSWORD, csrf_for, login
from tests.support import make_signature, wait_until

SLUG = "shared-address"
BODY = (
    "Dear {{ target.name }},\n\nPlease act.\n\n{{ supporter.full_name }}\n{{ supporter.address }}\n"
)


def organisations(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for org in ("alpha", "beta"):
            save_organisation(
                conn,
                checked(slug=org, name=org.title(), privacy_url=f"https://{org}.example.org/p"),
            )
    for org in ("alpha", "beta"):
        add_staff(
            engine, f"editor@{org}.example.org", STAFF_PASSWORD, organisation=org, role="editor"
        )


def editor_of(org: str, settings: Settings, engine: sa.Engine) -> TestClient:
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    assert login(client, email=f"editor@{org}.example.org").status_code == 303
    return client


def form(**changes: str) -> dict[str, str]:
    return {
        "slug": SLUG,
        "title": "Alpha's campaign",
        "story": "Why it matters.",
        "target_kind": "mp",
        "letter_subject": "Please act",
        "letter_body": BODY,
        "goal": "500",
        "postcode": "",
        "action": "save",
        **changes,
    }


def post(client: TestClient, url: str, data: dict[str, str], page: str = "/admin") -> Any:
    return client.post(
        url, data={"csrf_token": csrf_for(client, page), **data}, follow_redirects=False
    )


def errors_in(text: str) -> list[str]:
    summary = text.split('govuk-error-summary__list"', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(part.split("</a>")[0]) for part in summary.split('">')[1:]]


def campaigns_now(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT slug, organisation, title, version FROM campaigns "
                "WHERE slug NOT IN ('guardians-for-children', 'specialist-support-for-child-victims') ORDER BY slug"
            )
        ).all()


def store_as_before(engine: sa.Engine, slug: str, letter: dict[str, Any], **fields: Any) -> None:
    """A campaign stored before templates were tried at save, straight into the tables."""
    definition = {
        "slug": slug,
        "title": "Stored earlier",
        "target": {"kind": "mp"},
        "letter": letter,
        "open": True,
        **fields,
    }
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO campaigns (slug, title, definition, updated_at, organisation, version)"
                " VALUES (:slug, 'Stored earlier', CAST(:d AS jsonb), :now, 'alpha', 1)"
            ),
            {
                "slug": slug,
                "d": Campaign.model_validate(
                    definition, context={"stored": True}
                ).model_dump_json(),
                "now": now,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO campaign_versions (campaign, version, definition, saved_at, saved_by)"
                " SELECT slug, 1, definition, updated_at, 'test' FROM campaigns WHERE slug = :slug"
            ),
            {"slug": slug},
        )


def test_two_organisations_creating_one_address_at_once_cannot_take_each_others(
    settings, engine
) -> None:
    organisations(engine)
    alpha = editor_of("alpha", settings, engine)
    beta_words = Campaign.model_validate(
        {
            "slug": SLUG,
            "title": "Beta's campaign",
            "target": {"kind": "mp"},
            "letter": {"subject": "Beta", "body": BODY},
            "organisation": "beta",
            "open": False,
        }
    )
    answers: list[Any] = []
    # Beta's save is in flight (its row written, not yet committed) when alpha saves the same
    # address: alpha's request waits on beta's row, then must be refused, not take it over.
    with engine.connect() as beta:
        transaction = beta.begin()
        save_campaign(beta, beta_words, saved_by="editor@beta.example.org")
        token = csrf_for(alpha, "/admin/campaigns/new")
        request = threading.Thread(
            target=lambda: answers.append(
                alpha.post(
                    "/admin/campaigns/new",
                    data={"csrf_token": token, **form()},
                    follow_redirects=False,
                )
            )
        )
        request.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        # Autocommit: pg_stat_activity is read once per transaction.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            wait_until(
                lambda: watcher.execute(sa.text(waiting)).scalar() or not request.is_alive(),
                interval=0.02,
                message="alpha's save to wait on beta's row",
            )
        assert request.is_alive(), "alpha's save finished without waiting for beta's"
        transaction.commit()
    request.join(30)
    answer = answers[0]
    assert answer.status_code == 400, answer.headers.get("location")
    assert any(
        "there is already a campaign at /c/shared-address" in e for e in errors_in(answer.text)
    )
    assert [(r.slug, r.organisation, r.title, r.version) for r in campaigns_now(engine)] == [
        (SLUG, "beta", "Beta's campaign", 1)
    ]
    with engine.connect() as conn:
        history = (
            conn.execute(
                sa.text("SELECT saved_by FROM campaign_versions WHERE campaign = :s"), {"s": SLUG}
            )
            .scalars()
            .all()
        )
    assert history == ["editor@beta.example.org"]  # alpha's words are in nobody's history


def test_a_letter_that_cannot_be_written_is_refused_at_its_field_and_nothing_is_saved(
    settings, engine
) -> None:
    organisations(engine)
    alpha = editor_of("alpha", settings, engine)
    for body, says in [
        ("Dear {{ target.nmae }},\n\nPlease act.\n", "target.nmae is undefined"),
        ("Dear {{ target.name }},\n{{ 1/0 }}\n", "Letter: template error"),
    ]:
        answer = post(alpha, "/admin/campaigns/new", form(letter_body=body), "/admin/campaigns/new")
        assert answer.status_code == 400
        assert any(e.startswith("Letter: ") and says in e for e in errors_in(answer.text)), (
            errors_in(answer.text)
        )
    assert campaigns_now(engine) == []


def test_links_shown_to_supporters_are_https_or_our_own(settings, engine) -> None:
    organisations(engine)
    alpha = editor_of("alpha", settings, engine)
    for link in (
        "javascript:alert(document.cookie)",
        "data:text/html,<script>x</script>",
        "//evil.example",
    ):
        for field in ("privacy_url", "terms_url"):
            answer = post(
                alpha, "/admin/campaigns/new", form(**{field: link}), "/admin/campaigns/new"
            )
            assert answer.status_code == 400, (field, link)
            assert any("must be an https:// address or a path" in e for e in errors_in(answer.text))
    assert campaigns_now(engine) == []


def test_a_stored_letter_that_fails_leaves_the_page_and_the_api_working(settings, engine) -> None:
    organisations(engine)
    store_as_before(
        engine,
        "stored-broken",
        {
            "subject": "Act",
            "body": "Dear {{ 1/0 }},\n{% block message %}Words.{% endblock %}",
            "editable": True,
        },
    )
    public = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    page = public.get("/c/stored-broken")
    assert page.status_code == 200
    assert "Read the letter" not in page.text and "1/0" not in page.text  # no template code
    api = public.get("/api/v1/campaigns/stored-broken")
    assert api.status_code == 200 and api.json()["slug"] == "stored-broken"
    # Someone signed it: the confirm link says the letter cannot go now, with no button.
    signed = public.post("/api/v1/campaigns/stored-broken/signatures", json=make_signature())
    assert signed.status_code == 202, signed.text
    with engine.connect() as conn:
        signature = conn.execute(
            sa.text("SELECT id FROM signatures WHERE campaign = 'stored-broken'")
        ).scalar_one()
    confirm = public.get(f"/confirm/{make_token(settings.secret_key, 'confirm', str(signature))}")
    assert confirm.status_code == 503
    assert "letter cannot be sent at the moment" in html.unescape(confirm.text)
    assert "csrf_token" not in confirm.text  # nothing to press
    # Opening it again, or saving it, writes the letter for the sample supporters: refused.
    alpha = editor_of("alpha", settings, engine)
    closed = post(
        alpha, "/admin/c/stored-broken/status", {"action": "pause"}, "/admin/c/stored-broken"
    )
    assert closed.status_code == 400 and "letter.body: template error on line 1" in html.unescape(
        closed.text
    )


def test_a_campaign_file_nested_thousands_deep_is_a_clear_400(settings, engine) -> None:
    organisations(engine)
    alpha = editor_of("alpha", settings, engine)
    token = csrf_for(alpha, "/admin/campaigns/new")
    nested = b"slug: deep\ntitle: " + b"[" * 20_000 + b"]" * 20_000 + b"\n"
    answer = alpha.post(
        "/admin/campaigns/import",
        data={"csrf_token": token},
        files={"file": ("deep.yaml", nested, "application/yaml")},
    )
    assert answer.status_code == 400
    assert "deep.yaml: cannot read YAML" in html.unescape(answer.text)
    assert campaigns_now(engine) == []
