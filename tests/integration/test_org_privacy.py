"""An organisation's privacy notice is shown where supporters give it their details (issue 25):
beside its own-list opt-in (ticking it sends their details to the organisation) and in the
form's consent; an organisation that gave its notice as text has it on our page
``/privacy/{organisation}``, escaped like any Markdown of theirs.

In-process: the app through TestClient, real PostgreSQL.
"""

from __future__ import annotations

import html

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from shared.campaigns import Campaign, save_campaign
from shared.organisations import checked, save_organisation

BODY = "Dear {{ target.name }},\n\nPlease act.\n\n{{ supporter.full_name }}\n"


def campaign_of(engine: sa.Engine, org: str, **fields: str) -> str:
    with engine.begin() as conn:
        save_organisation(conn, checked(slug=org, name=f"{org.title()} <Trust>", **fields))
        save_campaign(
            conn,
            Campaign.model_validate(
                {
                    "slug": f"{org}-campaign",
                    "title": "Act now",
                    "target": {"kind": "mp"},
                    "letter": {"subject": "Act", "body": BODY},
                    "organisation": org,
                }
            ),
        )
    return f"/c/{org}-campaign"


def test_the_notice_stands_beside_the_opt_in_and_in_the_consent(settings, engine) -> None:
    page_of_text = campaign_of(
        engine,
        "alpha",
        privacy_text="# How we use your details\n\nWe keep them safe. <script>x()</script>",
        list_opt_in="Send me Alpha's newsletter",
    )
    page_of_url = campaign_of(engine, "beta", privacy_url="https://beta.example.org/privacy")
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)

    alpha = html.unescape(client.get(page_of_text).text)
    opt_in = alpha.split('id="org_opt_in-hint"', 1)[1].split("</div>", 1)[0]
    assert (
        'How Alpha <Trust> uses your details: <a href="/privacy/alpha">its privacy notice</a>'
        in opt_in
    )
    consent = alpha.split('for="consent"', 1)[1].split("</label>", 1)[0]
    assert (
        '<a href="/privacy/alpha">privacy notice of Alpha <Trust></a>, who runs this campaign'
        in consent
    )

    notice = client.get("/privacy/alpha")
    assert notice.status_code == 200
    assert "<h2>How we use your details</h2>" in notice.text and "We keep them safe." in notice.text
    assert "<script>" not in notice.text  # their Markdown, with no raw HTML
    assert "Privacy notice of Alpha &lt;Trust&gt;" in notice.text

    beta = html.unescape(client.get(page_of_url).text)
    assert 'href="https://beta.example.org/privacy">privacy notice of Beta <Trust></a>' in beta
    assert 'id="org_opt_in-hint"' not in beta  # beta offers no list of its own
    # An organisation that gave an address, none, or a slug that is not one: no page of ours.
    assert [
        client.get(p).status_code
        for p in ("/privacy/beta", "/privacy/nobody", "/privacy/NOT_A_SLUG")
    ] == [
        404,
        404,
        404,
    ]


def test_dear_mps_own_campaigns_ask_only_for_dear_mps_terms(settings, engine) -> None:
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    page = html.unescape(client.get("/c/guardians-for-children").text)
    consent = page.split('for="consent"', 1)[1].split("</label>", 1)[0]
    assert consent.strip().endswith('<a href="/privacy">privacy notice</a>.')
