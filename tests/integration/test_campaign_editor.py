"""Campaigns from the staff pages (issue 18): create, edit, preview, open, pause and close from
/admin with the campaign file's checks and words; viewers read only; a sent letter keeps the
version it was written from; a ``both`` campaign's letter goes to the MP and once to its fixed
target; opening and closing dates.

In-process: the app through TestClient, the mailer's own handler with a real SMTP catcher (the
``mail`` fixture), real PostgreSQL. No services started.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.admin.accounts import add_staff
from services.intake.app import create_app
from services.mailer import handlers as mailer
from shared.campaigns import CampaignError, get_campaign, read_campaign_yaml
from shared.config import Settings
from shared.messages import Envelope
from shared.organisations import checked, save_organisation
from tests.integration.admin_helpers import STAFF_PASSWORD, csrf_for, login
from tests.integration.mailer_helpers import MP, resolved_event

UK = ZoneInfo("Europe/London")
ORG = "alpha"
EDITOR, VIEWER = "editor@alpha.example.org", "viewer@alpha.example.org"
SLUG = "protect-young-carers"
BODY = (
    "Dear {{ target.name }},\n\nPlease protect young carers.\n{% if supporter.comment %}\n"
    "{{ supporter.comment }}\n{% endif %}\nYours sincerely,\n\n{{ supporter.full_name }}\n"
    "{{ supporter.address }}\n"
)


def organisation_with_staff(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        save_organisation(
            conn, checked(slug=ORG, name="Alpha", privacy_url="https://alpha.example.org/p")
        )
    add_staff(engine, EDITOR, STAFF_PASSWORD, organisation=ORG, role="editor")
    add_staff(engine, VIEWER, STAFF_PASSWORD, organisation=ORG, role="viewer")


def client_as(settings: Settings, engine: sa.Engine, email: str) -> TestClient:
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    assert login(client, email=email).status_code == 303
    return client


def campaign_form(**changes: str) -> dict[str, str]:
    form = {
        "slug": SLUG,
        "title": "Protect young carers",
        "story": "Young carers miss school.\n\nAsk for support.",
        "target_kind": "mp",
        "letter_subject": "Support young carers",
        "letter_body": BODY,
        "goal": "500",
        "disclosure": "Sent through the Alpha campaign.",
        "thank_you": "Thank you! **Tell a friend.**",
        "postcode": "",
    }
    return {**form, **changes}


def post(client: TestClient, url: str, form: dict[str, str], page: str = "/admin") -> Any:
    data = {"csrf_token": csrf_for(client, page), **form}
    return client.post(url, data=data, follow_redirects=False)


def stored(engine: sa.Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.text(sql)).all()
            for sql in (
                "SELECT slug, organisation, version, definition FROM campaigns ORDER BY slug",
                "SELECT campaign, version FROM campaign_versions ORDER BY 1, 2",
            )
        )


def errors_in(text: str) -> list[str]:
    summary = text.split('govuk-error-summary__list"', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(part.split("</a>")[0]) for part in summary.split('">')[1:]]


def test_create_preview_save_open_and_bad_input_changes_nothing(settings, engine) -> None:
    organisation_with_staff(engine)
    editor = client_as(settings, engine, EDITOR)
    assert editor.get("/admin/campaigns/new").status_code == 200
    before = stored(engine)

    bad = campaign_form(
        slug="Bad Slug",
        target_kind="fixed",
        letter_body="Dear {{ target.name }\n",
        goal="lots",
        opens_at="next week",
        action="save",
    )
    answer = post(editor, "/admin/campaigns/new", bad)
    assert answer.status_code == 400
    shown = errors_in(answer.text)
    # The campaign file's words for the same template, at its field.
    yaml = f"slug: x-y\ntitle: t\ntarget: {{kind: mp}}\nletter:\n  subject: s\n  body: {bad['letter_body']!r}\n"
    try:
        read_campaign_yaml(yaml, "f.yaml")
    except CampaignError as exc:
        loader_words = str(exc).split("letter.body: ", 1)[1]
    assert f"Letter: {loader_words}" in shown
    assert "Fixed target's name: a fixed target needs both name and email" in shown
    assert any(s.startswith("Address: ") for s in shown)
    assert any(s.startswith("Signature goal: ") for s in shown)
    assert any(s.startswith("Opens at: enter a date") for s in shown)
    assert 'value="Bad Slug"' in answer.text  # what was typed is shown again
    assert stored(engine) == before

    # Preview: the letter as the MP gets it, and the public page; nothing saved.
    preview = post(
        editor, "/admin/campaigns/new", campaign_form(action="preview", postcode="zz99 9zz")
    )
    assert preview.status_code == 200, errors_in(preview.text)
    page = html.unescape(preview.text)
    assert "Sam Sample via Dear MP <letters@dearmp.invalid>" in page
    assert "Subject" in page and "Support young carers" in page
    assert "placeholder MP" in page and "Dear [your MP's name]," in page
    assert "Sent through the Alpha campaign." in page
    assert "Young carers miss school." in page  # the public page's story
    assert f'action="/c/{SLUG}/sign"' in page  # its form, though a new campaign starts paused
    assert stored(engine) == before

    saved = post(editor, "/admin/campaigns/new", campaign_form(action="save"))
    assert saved.status_code == 303 and saved.headers["location"] == f"/admin/c/{SLUG}?saved=1"
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT organisation, version FROM campaigns WHERE slug = :s"), {"s": SLUG}
        ).one()
        campaign = get_campaign(conn, SLUG)
    assert tuple(row) == (ORG, 1) and campaign is not None
    assert campaign.status() == "paused" and not campaign.open  # nobody signs a draft
    assert editor.get(f"/c/{SLUG}").status_code == 404  # a draft, never open: not public
    staff_page = editor.get(f"/admin/c/{SLUG}?saved=1").text
    assert "Version 1 is saved." in staff_page and "Download as YAML" in staff_page

    # The same address again: refused, nothing changed.
    again = post(editor, "/admin/campaigns/new", campaign_form(action="save", title="Other"))
    assert again.status_code == 400
    assert f"Address: there is already a campaign at /c/{SLUG}; choose another" in errors_in(
        again.text
    )

    opened = post(editor, f"/admin/c/{SLUG}/status", {"action": "open"})
    assert opened.status_code == 303
    public = editor.get(f"/c/{SLUG}").text
    assert 'action="/c/' + SLUG + '/sign"' in public
    assert "Your letter goes to your MP" in public


def test_edit_bad_input_changes_nothing_and_a_viewer_changes_nothing(settings, engine) -> None:
    organisation_with_staff(engine)
    editor = client_as(settings, engine, EDITOR)
    assert post(editor, "/admin/campaigns/new", campaign_form(action="save")).status_code == 303
    before = stored(engine)

    edit_page = editor.get(f"/admin/c/{SLUG}/edit").text
    assert 'name="version" value="1"' in edit_page
    bad = campaign_form(
        letter_body="Dear {{ target.name }},\n{% if x %}\n",
        closes_at="2027-01-01 10:00",
        opens_at="2027-02-01 10:00",
        version="1",
        action="save",
    )
    answer = post(editor, f"/admin/c/{SLUG}/edit", bad, f"/admin/c/{SLUG}/edit")
    assert answer.status_code == 400
    shown = errors_in(answer.text)
    assert "Closes at: must be after opens_at" in shown
    assert any(s.startswith("Letter: template error on line 2") for s in shown)
    assert stored(engine) == before

    # Someone else saved meanwhile: this form's save is refused.
    stale = post(editor, f"/admin/c/{SLUG}/edit", campaign_form(version="0", action="save"))
    assert stale.status_code == 400 and "since you opened it" in stale.text
    assert stored(engine) == before

    viewer = client_as(settings, engine, VIEWER)
    refused = [
        viewer.get(f"/admin/c/{SLUG}/edit"),
        viewer.get("/admin/campaigns/new"),
        post(viewer, f"/admin/c/{SLUG}/edit", campaign_form(version="1", action="save")),
        post(viewer, "/admin/campaigns/new", campaign_form(slug="other-one", action="save")),
        post(viewer, f"/admin/c/{SLUG}/status", {"action": "open"}),
        post(viewer, "/admin/campaigns/import", {}),
    ]
    assert [r.status_code for r in refused] == [403] * 6
    assert stored(engine) == before
    # A viewer reads: the page (without the buttons), the preview, the versions, the file.
    page = viewer.get(f"/admin/c/{SLUG}").text
    assert "Download as YAML" in page and "Open now" not in page and "/edit" not in page
    assert viewer.get(f"/admin/c/{SLUG}/preview?postcode=SW1A1AA").status_code == 200
    assert viewer.get(f"/admin/c/{SLUG}/versions").status_code == 200
    exported = viewer.get(f"/admin/c/{SLUG}/campaign.yaml")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    assert "organisation: alpha" in exported.text

    # The file comes back as the same campaign; uploaded with a change it is a new version.
    same = read_campaign_yaml(exported.text, "x.yaml")
    with engine.connect() as conn:
        assert same.model_dump(exclude={"organisation"}) == get_campaign(conn, SLUG).model_dump(
            exclude={"organisation"}
        )
    token = csrf_for(editor, "/admin/campaigns/new")
    changed = exported.text.replace("title: Protect young carers", "title: Young carers count")
    uploaded = editor.post(
        "/admin/campaigns/import",
        data={"csrf_token": token},
        files={"file": ("c.yaml", changed.encode(), "application/yaml")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303 and uploaded.headers["location"].endswith("?saved=2")
    broken = editor.post(
        "/admin/campaigns/import",
        data={"csrf_token": token},
        files={"file": ("c.yaml", b"slug: x\ntitle: t\n", "application/yaml")},
    )
    assert (
        broken.status_code == 400
        and "c.yaml: slug: String should match pattern" in html.unescape(broken.text)
    )


def sent_letters(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT signature_id, purpose, recipient, campaign_version, body, sends, state "
                "FROM letters WHERE purpose IN ('letter', 'fixed_copy') ORDER BY created_at, purpose"
            )
        ).all()


def test_an_edit_never_changes_a_letter_already_sent(settings, engine, mail) -> None:
    organisation_with_staff(engine)
    editor = client_as(settings, engine, EDITOR)
    assert post(editor, "/admin/campaigns/new", campaign_form(action="save")).status_code == 303
    handle = mailer.bootstrap(settings, engine)
    first = resolved_event(campaign=SLUG)
    handle(Envelope.wrap(first, correlation_id=first.signature_id))
    [before] = sent_letters(engine)
    assert before.campaign_version == 1 and "Please protect young carers." in before.body

    new_body = BODY.replace("Please protect young carers.", "Fund young carers' breaks now.")
    form = campaign_form(letter_body=new_body, version="1", action="save")
    assert post(editor, f"/admin/c/{SLUG}/edit", form).status_code == 303
    [after] = sent_letters(engine)
    assert after == before  # the same version, the same words

    handle = mailer.bootstrap(settings, engine)  # a fresh campaign cache: the edit applies
    second = resolved_event(campaign=SLUG)
    handle(Envelope.wrap(second, correlation_id=second.signature_id))
    rows = {r.signature_id: r for r in sent_letters(engine)}
    assert rows[second.signature_id].campaign_version == 2
    assert "Fund young carers' breaks now." in rows[second.signature_id].body
    assert rows[first.signature_id] == before

    # The organiser sees which text each letter got.
    history = editor.get(f"/admin/c/{SLUG}/versions?v=1").text
    assert "Please protect young carers." in history
    assert "Version 2</a>" in history and "Version 1</a>" in history


def test_both_sends_the_letter_to_the_mp_and_once_to_the_fixed_target(
    settings, engine, mail
) -> None:
    organisation_with_staff(engine)
    editor = client_as(settings, engine, EDITOR)
    form = campaign_form(
        target_kind="both",
        target_name="The Home Secretary",
        target_email="home.secretary@example.gov.uk",
        action="save",
    )
    assert post(editor, "/admin/campaigns/new", form).status_code == 303
    assert post(editor, f"/admin/c/{SLUG}/status", {"action": "open"}).status_code == 303
    assert "and a copy of it to The Home Secretary" in editor.get(f"/c/{SLUG}").text
    event = resolved_event(campaign=SLUG)
    envelope = Envelope.wrap(event, correlation_id=event.signature_id)
    handle = mailer.bootstrap(settings, engine)
    handle(envelope)
    handle(envelope)  # redelivered: nothing goes twice
    caught = mail.handler.wait_for(3, timeout=20)
    intended = sorted(c.message["X-DearMP-Intended-Recipient"] for c in caught)
    assert intended == sorted([MP.email, "home.secretary@example.gov.uk", event.supporter.email]), (
        intended
    )
    by_id = {str(c.message["Message-ID"]).split(".")[0]: c for c in caught}
    letter, fixed = by_id["<letter"], by_id["<fixed_copy"]
    text = letter.message.get_body(("plain",)).get_content()
    assert f"Dear {MP.name}," in text
    assert fixed.message.get_body(("plain",)).get_content() == text
    assert fixed.message["Subject"] == letter.message["Subject"]
    assert fixed.message["From"] == letter.message["From"]
    rows = sent_letters(engine)
    assert sorted((r.purpose, r.recipient, r.sends, r.state) for r in rows) == [
        ("fixed_copy", "home.secretary@example.gov.uk", 1, "sent"),
        ("letter", MP.email, 1, "sent"),
    ]
    assert {r.campaign_version for r in rows} == {2}  # created, then opened
    # A preview of a "both" campaign shows both emails.
    preview = editor.get(f"/admin/c/{SLUG}/preview").text
    assert "a copy of the same letter" in preview


def test_opening_and_closing_dates_are_respected(settings, engine) -> None:
    organisation_with_staff(engine)
    editor = client_as(settings, engine, EDITOR)
    soon = (datetime.now(UTC) + timedelta(days=2)).astimezone(UK)
    form = campaign_form(opens_at=soon.strftime("%Y-%m-%d %H:%M"), action="save")
    assert post(editor, "/admin/campaigns/new", form).status_code == 303
    # Its opening date is still to come: never open yet, it is a draft to the public (issue 25:
    # as a missing campaign, until its opens_at), and it takes nobody.
    assert editor.get(f"/c/{SLUG}").status_code == 404
    refused = editor.post(f"/c/{SLUG}/sign", data={"csrf_token": "x", "first_name": "Jo"})
    assert refused.status_code == 404
    assert f"/c/{SLUG}" not in editor.get("/").text  # not among the open campaigns
    assert editor.get(f"/api/v1/campaigns/{SLUG}").status_code == 404

    # Opened now by hand: the opening date is cleared. A closing date is shown.
    assert post(editor, f"/admin/c/{SLUG}/status", {"action": "open"}).status_code == 303
    closes = (datetime.now(UTC) + timedelta(days=30)).astimezone(UK)
    edit = campaign_form(closes_at=closes.strftime("%Y-%m-%d %H:%M"), version="2", action="save")
    saved = post(editor, f"/admin/c/{SLUG}/edit", edit)
    assert saved.status_code == 303, errors_in(saved.text)
    public = editor.get(f"/c/{SLUG}").text
    assert "Signatures close on" in public and f'action="/c/{SLUG}/sign"' in public
    assert editor.get(f"/api/v1/campaigns/{SLUG}").json()["open"] is True

    # Its closing time passes: closed, and it says so.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE campaigns SET definition = jsonb_set(definition, '{closes_at}', "
                "to_jsonb(CAST(:at AS text))), updated_at = now() WHERE slug = :s"
            ),
            {"s": SLUG, "at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
        )
        campaign = get_campaign(conn, SLUG)
    assert campaign is not None and campaign.status() == "closed"
    assert "This campaign has closed" in editor.get(f"/c/{SLUG}").text
    assert editor.get(f"/api/v1/campaigns/{SLUG}").json()["open"] is False
    # Closing by hand works the same way; pausing a closed campaign keeps it closed.
    assert post(editor, f"/admin/c/{SLUG}/status", {"action": "pause"}).status_code == 303
    with engine.connect() as conn:
        assert get_campaign(conn, SLUG).status() == "closed"
