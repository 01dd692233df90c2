"""The intake JSON API and confirmation pages, in-process against real Postgres."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from shared.campaigns import read_campaign_file, save_campaign
from shared.config import Settings
from shared.db import make_engine
from shared.tokens import make_token
from tests.support import ROOT, confirm, csrf_token_in, make_signature

URL = "/api/v1/campaigns/guardians-for-children/signatures"


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_bad_input_gets_a_clear_4xx_and_changes_nothing(settings, engine) -> None:
    client = client_for(settings, engine)
    cases = {
        "postcode": make_signature(postcode="NOT A POSTCODE"),
        "consent": {**make_signature(), "consent": False},
        "first_name": make_signature(first_name="Jo\r\nBcc: x@example.org"),
        "last_name": make_signature(last_name="www.spam.example.com"),
        "town": make_signature(town="=HYPERLINK(1)"),
        "email": make_signature(email="not-an-email"),
    }
    for field, body in cases.items():
        response = client.post(URL, json=body)
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert any(e["field"] == field for e in errors), errors
    assert "Enter a real postcode" in client.post(URL, json=cases["postcode"]).text
    assert (
        client.post("/api/v1/campaigns/nope/signatures", json=make_signature()).status_code == 404
    )
    assert (
        client.post(URL, content=b"{", headers={"content-type": "application/json"}).status_code
        == 422
    )
    assert count(engine, "SELECT count(*) FROM signatures") == 0
    assert count(engine, "SELECT count(*) FROM outbox") == 0


def test_signing_twice_gives_the_same_answer_and_one_signature(settings, engine) -> None:
    """The same address (however written) signing again while pending replaces the signature:
    one row, with a new id (the first link stops working), and a fresh confirmation."""
    client = client_for(settings, engine)
    first = client.post(URL, json=make_signature(email="Jo.Bloggs+campaign@gmail.com"))
    with engine.connect() as conn:
        first_id = conn.execute(sa.text("SELECT id FROM signatures")).scalar_one()
    second = client.post(URL, json=make_signature(email="jobloggs@googlemail.com", town="Leeds"))
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT id, address_lines FROM signatures")).one()
    assert row.id != first_id and row.address_lines == ["1 Test Street", "Leeds"]
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key='signature.received'") == 2

    # Once confirmed, signing again changes nothing and stages signature.repeated instead.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE signatures SET status = 'sent'"))
    third = client.post(URL, json=make_signature(email="jobloggs@gmail.com", town="York"))
    assert third.json() == first.json()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM signatures")).scalar_one() == row.id
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key='signature.received'") == 2
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key='signature.repeated'") == 1


def test_confirmation_needs_a_post_with_a_valid_token(settings, engine) -> None:
    client = client_for(settings, engine)
    assert client.post(URL, json=make_signature()).status_code == 202
    with engine.connect() as conn:
        signature_id = conn.execute(sa.text("SELECT id FROM signatures")).scalar_one()
    token = make_token(settings.secret_key, "confirm", str(signature_id))
    page = client.get(f"/confirm/{token}")
    assert page.status_code == 200
    assert count(engine, "SELECT count(*) FROM signatures WHERE status='pending'") == 1
    form = {"csrf_token": csrf_token_in(page.text)}
    assert client.post(f"/confirm/{token}x", data=form).status_code == 400
    wrong_purpose = make_token(settings.secret_key, "unsubscribe", str(signature_id))
    assert client.post(f"/confirm/{wrong_purpose}", data=form).status_code == 400
    assert client.post(f"/confirm/{token}", data={}).status_code == 400  # no CSRF token
    assert count(engine, "SELECT count(*) FROM signatures WHERE status='pending'") == 1
    done = client.post(f"/confirm/{token}", data=form, follow_redirects=False)
    thanks = make_token(settings.secret_key, "thanks", str(signature_id))
    assert done.status_code == 303 and done.headers["location"] == f"/thanks/{thanks}"
    assert "We are finding your MP" in client.get(f"/thanks/{thanks}").text
    assert client.post(f"/confirm/{token}", data=form).status_code == 200  # twice: harmless
    assert count(engine, "SELECT count(*) FROM signatures WHERE status='confirmed'") == 1
    assert count(engine, "SELECT count(*) FROM outbox WHERE routing_key='signature.confirmed'") == 1


def test_database_down_answers_503_with_a_message(settings) -> None:
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    client = client_for(settings, dead)
    response = client.post(URL, json=make_signature())
    assert response.status_code == 503
    assert "nothing was saved" in response.json()["detail"]
    page = client.get("/c/guardians-for-children")
    assert page.status_code == 503 and "service is unavailable" in page.text
    assert client.get("/healthz").status_code == 200


def test_campaign_page_and_health(settings, engine) -> None:
    client = client_for(settings, engine)
    page = client.get("/c/guardians-for-children")
    assert page.status_code == 200 and "Read the letter" in page.text
    assert client.get("/c/no-such-campaign").status_code == 404
    assert client.get("/metrics").status_code == 404  # on the metrics port (serve.py), not here
    assert client.get("/openapi.json").json()["paths"]


def test_rate_limits_hold_in_postgres_and_answer_429(settings, engine) -> None:
    limited = settings.model_copy(update={"rate_limit_ip": "3/600", "rate_limit_email": "2/3600"})
    # Two app instances: the limit is shared through Postgres, as between two intake replicas.
    first, second = client_for(limited, engine), client_for(limited, engine)
    assert first.post(URL, json=make_signature()).status_code == 202
    assert second.post(URL, json=make_signature()).status_code == 202
    assert first.post(URL, json=make_signature()).status_code == 202
    over = second.post(URL, json=make_signature())
    assert over.status_code == 429 and "wait a few minutes" in over.json()["detail"]
    page = second.get("/c/guardians-for-children")
    form = {"csrf_token": csrf_token_in(page.text), **make_signature(), "consent": "yes"}
    html = second.post("/c/guardians-for-children/sign", data=form)
    assert html.status_code == 429 and "Too many attempts" in html.text
    assert count(engine, "SELECT count(*) FROM signatures") == 3

    per_email = settings.model_copy(update={"rate_limit_email": "2/3600"})
    client = client_for(per_email, engine)
    same = make_signature(email="same.person@example.org")
    assert (
        client.post(
            "/api/v1/campaigns/specialist-support-for-child-victims/signatures", json=same
        ).status_code
        == 202
    )
    assert client.post(URL, json=same).status_code == 202
    assert client.post(URL, json=same).status_code == 429  # third go within the hour


def test_honeypot_and_csrf_on_the_form(settings, engine) -> None:
    client = client_for(settings, engine)
    page = client.get("/c/guardians-for-children")
    token = csrf_token_in(page.text)
    form = {**make_signature(), "consent": "yes", "csrf_token": token}
    bot = client.post(
        "/c/guardians-for-children/sign",
        data={**form, "website": "http://spam"},
        follow_redirects=False,
    )
    assert bot.status_code == 303 and bot.headers["location"].endswith("/check-email")
    assert count(engine, "SELECT count(*) FROM signatures") == 0
    forged = client_for(settings, engine).post("/c/guardians-for-children/sign", data=form)
    assert forged.status_code == 400 and count(engine, "SELECT count(*) FROM signatures") == 0
    done = client.post("/c/guardians-for-children/sign", data=form, follow_redirects=False)
    assert done.status_code == 303 and count(engine, "SELECT count(*) FROM signatures") == 1


def test_counts_json_totals_and_per_constituency(settings, engine) -> None:
    from services.intake import counts

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO signatures (id, campaign, first_name, last_name, email, email_normalised,"
                " postcode, address_lines, status, constituency_code, constituency_name, created_at,"
                " confirmed_at) SELECT gen_random_uuid(), 'guardians-for-children', 'A', 'B',"
                " 'e' || i || '@example.org', 'e' || i || '@example.org', 'GU11 1AA', '[]', s, c, n,"
                " now(), CASE WHEN s = 'pending' THEN NULL ELSE now() END FROM (VALUES"
                " (1, 'sent', 'E14001063', 'Aldershot'), (2, 'sent', 'E14001063', 'Aldershot'),"
                " (3, 'resolved', 'E14001465', 'Sevenoaks'), (4, 'confirmed', NULL, NULL),"
                " (5, 'pending', NULL, NULL)) AS v(i, s, c, n)"
            )
        )
    counts._cache.clear()
    body = client_for(settings, engine).get("/c/guardians-for-children.json").json()
    assert body["total"] == 4  # confirmed signatures only
    assert body["goal"] == 10000
    assert body["by_constituency"] == [
        {"code": "E14001063", "name": "Aldershot", "count": 2},
        {"code": "E14001465", "name": "Sevenoaks", "count": 1},
    ]
    assert client_for(settings, engine).get("/c/nope.json").status_code == 404


def test_the_home_page_lists_the_open_campaigns_with_their_counts(settings, engine) -> None:
    client = client_for(settings, engine)
    assert client.post(URL, json=make_signature()).status_code == 202
    assert client.post(URL, json=make_signature()).status_code == 202
    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT id FROM signatures LIMIT 1")).scalar_one()
    # One confirmed the way a supporter does (the other stays pending and does not count).
    token = make_token(settings.secret_key, "confirm", str(first))
    assert confirm(client, f"/confirm/{token}").status_code == 200
    closed = read_campaign_file(ROOT / "campaigns" / "home-secretary-support.yaml")
    with engine.begin() as conn:
        save_campaign(conn, closed.model_copy(update={"open": False}))
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<a class="govuk-link" href="/c/guardians-for-children">' in html
    assert "<strong>1</strong> person has signed" in html
    assert "home-secretary-support" not in html and closed.title not in html
    welsh = client.get("/?lang=cy").text
    assert "Ymgyrchoedd" in welsh and 'href="/c/guardians-for-children"' in welsh


def test_an_email_no_mail_server_could_take_is_refused_and_an_idn_kept_in_ascii(
    settings, engine
) -> None:
    """An address with a non-ASCII local part needs SMTPUTF8, which many servers lack: refused
    with a reason (it used to be accepted, then dead-lettered, and the supporter waited for ever).
    An international domain is stored in its ASCII form, as it is sent and compared."""
    client = client_for(settings, engine)
    refused = client.post(URL, json=make_signature(email="jö.bloggs@example.org"))
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "field": "email",
            "message": "Your email address can only have letters a to z, numbers and symbols "
            "like . _ - + before the @",
        }
    ]
    assert count(engine, "SELECT count(*) FROM signatures") == 0
    assert client.post(URL, json=make_signature(email="jo@bücher.example")).status_code == 202
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT email, email_normalised FROM signatures")).one()
    assert tuple(stored) == ("jo@xn--bcher-kva.example", "jo@xn--bcher-kva.example")


def test_names_and_addresses_refuse_what_reads_as_an_address_or_hides_text(
    settings, engine
) -> None:
    """What phishing text needs to ride in an email from our domain: a hostname, an email
    address or markup, or characters that reorder or hide text. Each is refused beside its field,
    and nothing is stored; ordinary names and addresses (a flat "2/1", "St.Albans") pass."""
    client = client_for(settings, engine)
    refused = {
        "first_name": ["Visit evil.example", "bit.ly", "Jo@home", "<b>Jo</b>", "Jo\u202eevil"],
        "last_name": ["PAYPAL.CO", "Bloggs/Smith", "Blo\u200bggs", "Bloggs\U000e0041"],
        "address_line1": ["1 evil.example Road", "10 <Street>", "a/b Road", "1 High St\ue000"],
        "town": ["Aldershot.com", "Town@", "Alder/shot"],
    }
    for field, values in refused.items():
        for value in values:
            response = client.post(URL, json={**make_signature(), field: value})
            assert response.status_code == 422, (field, value, response.text)
            assert [e["field"] for e in response.json()["errors"]] == [field], (field, value)
    assert count(engine, "SELECT count(*) FROM signatures") == 0
    fine = make_signature(
        first_name="Siân", last_name="O'Brien-Jones", address_line1="Flat 2/1, 12 St.Albans Rd"
    )
    assert client.post(URL, json=fine).status_code == 202


def test_an_updates_headings_stay_below_its_title(settings, engine) -> None:
    """A "#" in an update renders below the update's own heading (an h3 on the campaign page),
    never as a second h1, so the page's heading order holds for screen readers."""
    from services.intake.admin.publishing import publish_update

    with engine.begin() as conn:
        publish_update(
            conn,
            "guardians-for-children",
            "Big news",
            "# We met the minister\n\n## Next",
            email_subscribers=False,
        )
    page = client_for(settings, engine).get("/c/guardians-for-children").text
    assert page.count("<h1") == 1
    assert "<h4>We met the minister</h4>" in page and "<h5>Next</h5>" in page


def test_bytes_that_are_not_utf8_are_refused_by_the_form_and_the_api_alike(
    settings, engine
) -> None:
    from urllib.parse import urlencode

    client = client_for(settings, engine)
    page = client.get("/c/guardians-for-children")
    fields = {"csrf_token": csrf_token_in(page.text), **make_signature(), "consent": "yes"}
    fields.pop("first_name")
    raw = urlencode(fields).encode() + b"&first_name=J%FF%FEo"  # not UTF-8
    html = client.post(
        "/c/guardians-for-children/sign",
        content=raw,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert html.status_code == 400 and html.headers["content-type"].startswith("text/html")
    assert "Some of what you typed could not be read" in html.text
    body = json.dumps(make_signature()).encode().replace(b'"Jo"', b'"J\xff\xfeo"')
    api = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert api.status_code in (400, 422) and api.json()["detail"]
    replaced = client.post(URL, json=make_signature(first_name="J\ufffdo"))
    assert replaced.status_code == 422
    assert replaced.json()["errors"][0]["field"] == "first_name"
    assert count(engine, "SELECT count(*) FROM signatures") == 0
