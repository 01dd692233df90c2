"""The staff pages' campaign editor and campaign page (issue 26): ``show_reply_rate`` round-trips
through the edit form; a campaign past its goal says so on the staff pages and on the public page
(en, cy, fr, numbers by babel).

In-process: the app through TestClient, real PostgreSQL. No services started.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake import counts
from services.intake.app import create_app
from services.intake.models import signatures
from shared.campaigns import get_campaign
from tests.integration.admin_helpers import CAMPAIGN, make_signature_row, make_staff
from tests.integration.test_admin import signed_in
from tests.integration.test_campaign_editor import (
    EDITOR,
    SLUG,
    campaign_form,
    client_as,
    organisation_with_staff,
    post,
)


def test_show_reply_rate_round_trips_through_the_editor(settings, engine) -> None:
    organisation_with_staff(engine)
    editor = client_as(settings, engine, EDITOR)
    form = campaign_form(show_reply_rate="yes", action="save")
    assert post(editor, "/admin/campaigns/new", form).status_code == 303
    with engine.connect() as conn:
        assert get_campaign(conn, SLUG).show_reply_rate is True  # type: ignore[union-attr]
    page = editor.get(f"/admin/c/{SLUG}/edit").text
    box = page.split('id="show_reply_rate"', 1)[1].split(">", 1)[0]
    assert "checked" in box
    # Saved again as shown (with another goal): still on; unticked: off.
    again = campaign_form(show_reply_rate="yes", goal="600", version="1", action="save")
    assert post(editor, f"/admin/c/{SLUG}/edit", again, f"/admin/c/{SLUG}/edit").status_code == 303
    with engine.connect() as conn:
        assert get_campaign(conn, SLUG).show_reply_rate is True  # type: ignore[union-attr]
    off = campaign_form(goal="600", version="2", action="save")
    assert post(editor, f"/admin/c/{SLUG}/edit", off, f"/admin/c/{SLUG}/edit").status_code == 303
    with engine.connect() as conn:
        assert get_campaign(conn, SLUG).show_reply_rate is False  # type: ignore[union-attr]
    box = editor.get(f"/admin/c/{SLUG}/edit").text.split('id="show_reply_rate"', 1)[1]
    assert "checked" not in box.split(">", 1)[0]


def _goal(engine: sa.Engine, goal: int, confirmed: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                # A new updated_at, as every change has: campaigns are parsed once per version.
                "UPDATE campaigns SET definition = jsonb_set(definition, '{goal}', to_jsonb(:g)), "
                "updated_at = clock_timestamp() WHERE slug = :s"
            ),
            {"g": goal, "s": CAMPAIGN},
        )
        conn.execute(
            signatures.insert(),
            [make_signature_row(created_at=now, confirmed_at=now) for _ in range(confirmed)],
        )


def test_the_staff_pages_say_when_the_goal_was_passed(settings, engine) -> None:
    """Issue 26: past its goal, a campaign read "1,234 confirmed of a goal of 1,000 (100%)"."""
    _goal(engine, 1000, 1234)
    client = signed_in(settings, engine)
    page = client.get(f"/admin/c/{CAMPAIGN}").text
    count = page.split('class="dearmp-count"', 1)[1].split("</p>", 1)[0]
    assert "<strong>1,234</strong> confirmed: the goal of 1,000 was passed (123%)" in count
    index = client.get("/admin").text
    assert "goal passed" in index.split(f'href="/admin/c/{CAMPAIGN}"', 1)[1].split("</tr>", 1)[0]


@pytest.mark.parametrize(
    ("lang", "passed", "reached", "before"),
    [
        (
            "en",
            "Our goal of 1,000 signatures has been passed",
            "Our goal of 1,000 signatures has been reached",
            "Our goal: 1,000 signatures",
        ),
        (
            "fr",
            "Notre objectif de 1\u202f000 signatures a été dépassé",
            "Notre objectif de 1\u202f000 signatures a été atteint",
            "Notre objectif\u00a0: 1\u202f000 signatures",
        ),
        (
            "cy",
            "Rydym wedi mynd heibio i’n nod o 1,000 o lofnodion",
            "Rydym wedi cyrraedd ein nod o 1,000 o lofnodion",
            None,
        ),
    ],
)
def test_the_public_page_says_when_the_goal_was_passed(
    settings, engine, lang: str, passed: str, reached: str, before: str | None
) -> None:
    """Issue 26: the public page said only "Our goal: 1,000 signatures" past the goal."""
    make_staff(engine)
    client = TestClient(create_app(settings, engine))

    def goal_line() -> str:
        counts._cache.clear()  # the public count is cached for a few seconds: read it afresh
        page = client.get(f"/c/{CAMPAIGN}?lang={lang}").text
        return page.split('class="dearmp-count"', 1)[1][:900]

    _goal(engine, 1000, 999)
    line = goal_line()
    assert passed not in line and reached not in line
    if before:
        assert before in line
    _goal(engine, 1000, 1)  # 1,000: reached
    assert reached in goal_line()
    _goal(engine, 1000, 1)  # 1,001: passed
    line = goal_line()
    assert passed in line and reached not in line
