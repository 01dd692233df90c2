"""What every intake response carries (security headers), HEAD wherever GET works, and the cap
on request bodies; in-process against real Postgres."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from shared.config import Settings
from tests.support import make_signature

CAMPAIGN = "guardians-for-children"
PAGES = [
    "/",
    f"/c/{CAMPAIGN}",
    f"/c/{CAMPAIGN}.json",
    f"/api/v1/campaigns/{CAMPAIGN}",
    "/no-such-page",
    "/admin/login",
    "/healthz",
    "/privacy",
    "/terms",
]


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def test_every_response_carries_the_security_headers(settings, engine) -> None:
    client = client_for(settings, engine)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["x-frame-options"] == "DENY", path


def test_head_works_wherever_get_does(settings, engine) -> None:
    client = client_for(settings, engine)
    for path in PAGES:
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-length") == got.headers.get("content-length"), path


def test_a_body_over_the_cap_gets_413_a_page_for_the_form_and_json_for_the_api(
    settings, engine
) -> None:
    client = client_for(settings, engine)
    huge = "x" * (70 * 1024)
    form = client.post(f"/c/{CAMPAIGN}/sign", data={"first_name": huge})
    assert form.status_code == 413
    assert form.headers["content-type"].startswith("text/html")
    assert "Too much was sent" in form.text and "{" not in form.text
    api = client.post(
        f"/api/v1/campaigns/{CAMPAIGN}/signatures", json={**make_signature(), "comment": huge}
    )
    assert api.status_code == 413
    assert api.json()["detail"].startswith("The request body is too large")
    assert api.headers["content-security-policy"]  # the refusal carries the headers too
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM signatures")).scalar_one() == 0
    # Under the cap, the same request is simply checked (and this one is accepted).
    assert (
        client.post(f"/api/v1/campaigns/{CAMPAIGN}/signatures", json=make_signature()).status_code
        == 202
    )


def test_the_consent_box_links_a_privacy_notice_and_terms_in_every_language(
    settings, engine
) -> None:
    client = client_for(settings, engine)
    form = client.get(f"/c/{CAMPAIGN}").text
    assert 'href="/privacy"' in form and 'href="/terms"' in form
    headings = {
        "en": ("Privacy notice", "Terms"),
        "cy": ("Hysbysiad preifatrwydd", "Telerau"),
        "fr": ("Avis de confidentialité", "Conditions"),
    }
    for lang, (privacy, terms) in headings.items():
        page = client.get(f"/privacy?lang={lang}")
        assert page.status_code == 200 and f">{privacy}</h1>" in page.text, lang
        assert f"{settings.retention_days:g}" in page.text  # the retention it states is ours
        page = client.get(f"/terms?lang={lang}")
        assert page.status_code == 200 and f">{terms}</h1>" in page.text, lang


def test_the_404_pages_language_links_stay_on_our_site(settings, engine) -> None:
    """A crafted address ("//evil.example/…") must not turn the 404 page's language links into
    links to another site (a browser reads "//host" as that host)."""
    client = client_for(settings, engine)
    page = client.get("http://testserver//evil.example/phish")
    assert page.status_code == 404
    header = page.text.split("<main", 1)[0]
    assert 'href="//' not in header and "evil.example" not in header
    assert 'href="/?lang=cy"' in header
    assert 'href="/no-such-page?lang=cy"' in client.get("/no-such-page").text


def test_the_api_docs_come_from_the_installed_package_not_a_cdn(settings, engine) -> None:
    client = client_for(settings, engine)
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "cdn." not in docs.text and "https://" not in docs.text.split("<body")[0]
    assert 'src="/api/docs/static/swagger-ui-bundle.js"' in docs.text
    assert client.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200
    assert "cdn" not in docs.headers["content-security-policy"]


def test_campaign_pages_carry_share_cards_and_links_before_and_after_signing(
    settings, engine
) -> None:
    from shared.campaigns import get_campaign, save_campaign

    client = client_for(settings, engine)
    page = client.get(f"/c/{CAMPAIGN}").text
    url = f"{settings.base_url}/c/{CAMPAIGN}"
    assert f'<meta property="og:url" content="{url}">' in page
    assert '<meta name="twitter:card" content="summary">' in page
    assert "https://wa.me/?text=" in page and "Ask others to sign" in page  # before signing
    with engine.begin() as conn:
        found = get_campaign(conn, CAMPAIGN)
        assert found is not None
        save_campaign(conn, found.model_copy(update={"share_text": "Write to your MP <today>"}))
    page = client.get(f"/c/{CAMPAIGN}").text
    assert f'content="Write to your MP &lt;today&gt; {url}"' in page  # escaped, with the link
    assert "<today>" not in page
    assert "on X</a>" not in page  # a campaign to each supporter's MP: no one handle to post to

    # A fixed target with a public handle: a post addressed to it, with the share text.
    fixed = client.get("/c/specialist-support-for-child-victims").text
    assert "Post to The Home Secretary on X" in fixed
    assert "tweet?text=%40ukhomeoffice%20" in fixed
