"""The campaign dashboard's reports (issue 18): sources carried from the campaign link through the
form and the API into the signature; per-day chart, confirmation rate, sources, the sortable
constituency table and the hex map on the staff page; the two CSV exports, streamed, guarded
against spreadsheet formulas, for the right roles only, and each recorded.

In-process (TestClient) against real Postgres: no services started.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.admin import exports
from services.intake.admin.accounts import add_staff
from services.intake.app import create_app
from services.intake.models import signatures
from services.mailer.models import letters
from shared.config import Settings
from shared.organisations import checked, save_organisation
from shared.reference import campaigns
from tests.integration.admin_helpers import (
    CAMPAIGN,
    STAFF_PASSWORD,
    login,
    make_signature_row,
)
from tests.support import csrf_token_in, make_signature

ALDERSHOT, SEVENOAKS, QUIET = (
    ("E14001063", "Aldershot"),
    ("E14001465", "Sevenoaks"),
    ("E14009902", "Demo Quiet"),
)


def client_as(settings: Settings, engine: sa.Engine, email: str, role: str = "owner") -> TestClient:
    """An account of the campaign's organisation ('ecpat', made if need be), signed in."""
    with engine.begin() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM organisations WHERE slug = 'ecpat'")).first():
            save_organisation(
                conn,
                checked(
                    slug="ecpat",
                    name="ECPAT UK",
                    privacy_url="https://example.org/privacy",
                    list_opt_in="Send me ECPAT UK's newsletter",
                ),
            )
            conn.execute(
                campaigns.update().where(campaigns.c.slug == CAMPAIGN).values(organisation="ecpat")
            )
    add_staff(engine, email, STAFF_PASSWORD, organisation="ecpat", role=role)
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    assert login(client, email=email).status_code == 303
    return client


def supporters(engine: sa.Engine) -> None:
    """Confirmed signatures in three constituencies (6, 3, 1), some opted in to the
    organisation's list, one pending, one confirmed without a constituency yet; with sources."""
    now = datetime.now(UTC)
    rows = []
    for i, (place, source) in enumerate(
        [(ALDERSHOT, "newsletter")] * 6 + [(SEVENOAKS, "facebook")] * 3 + [(QUIET, None)]
    ):
        row = make_signature_row(
            created_at=now - timedelta(days=i % 3, minutes=5),
            confirmed_at=now - timedelta(days=i % 3),
            constituency=place,
        )
        opted = i % 2 == 0
        row.update(
            source=source,
            supporter_key=f"key{i}",
            org_opt_in_wording="Send me ECPAT UK's newsletter" if opted else None,
            org_opt_in_at=row["created_at"] if opted else None,
        )
        rows.append(row)
    rows[0].update(first_name='=HYPERLINK("http://evil.example")', last_name="+Bloggs")
    pending = make_signature_row(created_at=now)
    pending.update(
        org_opt_in_wording="x", org_opt_in_at=now, source="newsletter", supporter_key="p"
    )
    unplaced = make_signature_row(created_at=now, confirmed_at=now, constituency=None)
    unplaced.update(org_opt_in_wording=None, org_opt_in_at=None, source=None, supporter_key="u")
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [*rows, pending, unplaced])


def table_rows(html: str, table_id: str) -> list[list[str]]:
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_sources_go_from_the_link_through_the_form_and_the_api_into_the_signature(
    settings, engine
) -> None:
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    page = client.get(
        f"/c/{CAMPAIGN}?source=newsletter&utm_source=ecpat&utm_medium=email"
        "&utm_campaign=<script>alert(1)</script>"
    )
    assert '<input type="hidden" name="source" value="newsletter">' in page.text
    assert '<input type="hidden" name="utm_medium" value="email">' in page.text
    assert "utm_campaign" not in page.text.split("<form", 1)[1].split("</form>", 1)[0]
    form = {
        "csrf_token": csrf_token_in(page.text),
        **make_signature(email="form.signer@example.org"),
        "consent": "yes",
        "source": "newsletter",
        "utm_source": "ecpat",
        "utm_medium": "email",
        "utm_campaign": "x" * 61,  # too long: not stored, and no error for the supporter
    }
    assert client.post(f"/c/{CAMPAIGN}/sign", data=form, follow_redirects=False).status_code == 303
    # A form sent back with an error keeps the tags.
    again = client.post(f"/c/{CAMPAIGN}/sign", data={**form, "email": "not an address"})
    assert again.status_code == 400
    assert '<input type="hidden" name="source" value="newsletter">' in again.text

    api = f"/api/v1/campaigns/{CAMPAIGN}/signatures"
    tagged = {**make_signature(email="api.signer@example.org"), "source": "partner-site"}
    assert client.post(api, json=tagged).status_code == 202
    refused = client.post(api, json={**make_signature(), "utm_source": "jo@example.org"})
    assert refused.status_code == 422
    assert client.post(api, json=make_signature(email="plain@example.org")).status_code == 202

    with engine.connect() as conn:
        stored = dict(
            (row.email, tuple(row)[1:])
            for row in conn.execute(
                sa.text(
                    "SELECT email, source, utm_source, utm_medium, utm_campaign FROM signatures"
                )
            )
        )
    assert stored == {
        "form.signer@example.org": ("newsletter", "ecpat", "email", None),
        "api.signer@example.org": ("partner-site", None, None, None),
        "plain@example.org": (None, None, None, None),
    }


def test_dashboard_shows_days_confirmation_sources_and_a_sortable_table_and_map(
    settings, engine
) -> None:
    supporters(engine)
    client = client_as(settings, engine, "viewer@example.org", role="viewer")
    html = client.get(f"/admin/c/{CAMPAIGN}").text
    assert '<title id="days-chart-title">Signatures per day, last 30 days</title>' in html
    assert "<caption>Signatures per day, last 30 days (UK time)</caption>" in html
    # 12 received (10 + 1 pending + 1 unplaced), 11 confirmed.
    assert "91.7%</strong> of the 12 signatures received" in html
    sources = table_rows(html, "sources-table")
    assert sources[0][:1] + sources[0][4:] == ["newsletter", "7", "6", "85.7%"]
    assert ["facebook", "–", "–", "–", "3", "3", "100.0%"] in sources

    # Default: most signatures first; the MP from the reference data.
    rows = table_rows(html, "seats")
    assert [r[0] for r in rows] == ["Aldershot", "Sevenoaks", "Demo Quiet"]
    assert rows[0][1:] == ["Alex Demo (Demo Party)", "6"]
    assert "1 confirmed without a constituency yet" in html
    assert (
        f'aria-sort="descending"><a href="/admin/c/{CAMPAIGN}?sort=signatures&amp;order=asc' in html
    )
    by_name = client.get(f"/admin/c/{CAMPAIGN}?sort=name&order=asc").text
    assert [r[0] for r in table_rows(by_name, "seats")] == ["Aldershot", "Demo Quiet", "Sevenoaks"]
    assert 'aria-sort="ascending"' in by_name
    by_name_desc = client.get(f"/admin/c/{CAMPAIGN}?sort=name&order=desc").text
    assert [r[0] for r in table_rows(by_name_desc, "seats")][0] == "Sevenoaks"
    nonsense = client.get(f"/admin/c/{CAMPAIGN}?sort=');DROP&order=sideways")
    assert nonsense.status_code == 200
    assert [r[0] for r in table_rows(nonsense.text, "seats")][0] == "Aldershot"

    # The map: every constituency a hex, named with its count.
    assert html.count("<path data-code=") == 650
    assert "<title>Aldershot: 6 signatures</title>" in html
    assert "<title>Demo Quiet: 1 signature</title>" not in html  # not on the real map
    assert "<title>Sevenoaks: 3 signatures</title>" in html
    assert "9 signatures in 2 constituencies" in html
    # A viewer sees the constituency export, not the supporters' one.
    assert "exports/constituencies.csv" in html and "exports/supporters.csv" not in html


def read_csv(response: Any) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_exports_stream_guard_formulas_are_for_the_right_roles_and_are_recorded(
    settings, engine
) -> None:
    supporters(engine)
    owner = client_as(settings, engine, "owner@example.org", role="owner")
    got = owner.get(f"/admin/c/{CAMPAIGN}/exports/supporters.csv")
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"].startswith(
        f'attachment; filename="{CAMPAIGN}-supporters-'
    )
    assert got.headers["cache-control"] == "no-store"
    rows = read_csv(got)
    assert rows[0] == exports.SUPPORTER_HEADER
    # Confirmed and opted in only (5 of the 10; not the pending one, not those who did not tick).
    assert len(rows) == 1 + 5
    assert {r[8] for r in rows[1:]} == {"Send me ECPAT UK's newsletter"}
    assert ['\'=HYPERLINK("http://evil.example")', "'+Bloggs"] in [r[:2] for r in rows]

    seats = owner.get(f"/admin/c/{CAMPAIGN}/exports/constituencies.csv")
    assert read_csv(seats) == [
        exports.CONSTITUENCY_HEADER,
        ["E14001063", "Aldershot", "Alex Demo", "Demo Party", "6"],
        ["E14001465", "Sevenoaks", "Sam Sample", "Example Party", "3"],
        ["E14009902", "Demo Quiet", "Robin Quiet", "Demo Party", "1"],
    ]

    # A viewer may take the counts, not the supporters; an editor may take both.
    viewer = client_as(settings, engine, "viewer@example.org", role="viewer")
    assert viewer.get(f"/admin/c/{CAMPAIGN}/exports/supporters.csv").status_code == 403
    assert viewer.get(f"/admin/c/{CAMPAIGN}/exports/constituencies.csv").status_code == 200
    editor = client_as(settings, engine, "editor@example.org", role="editor")
    assert editor.get(f"/admin/c/{CAMPAIGN}/exports/supporters.csv").status_code == 200
    assert owner.get("/admin/c/no-such-campaign/exports/supporters.csv").status_code == 404

    # Each export recorded, with its rows; shown on the campaign page.
    with engine.connect() as conn:
        log = conn.execute(
            sa.text("SELECT staff_email, kind, rows FROM staff_exports ORDER BY id")
        ).all()
    assert [tuple(r) for r in log] == [
        ("owner@example.org", "supporters", 5),
        ("owner@example.org", "constituencies", 3),
        ("viewer@example.org", "constituencies", 3),
        ("editor@example.org", "supporters", 5),
    ]
    page = owner.get(f"/admin/c/{CAMPAIGN}").text
    assert page.count("<td>owner@example.org</td>") == 2
    assert "Supporters who opted in to the organisation&#39;s updates" in page


def test_an_export_streams_in_batches_and_records_its_rows_at_the_end(settings, engine) -> None:
    now = datetime.now(UTC)
    many = []
    for i in range(exports.BATCH * 2 + 7):
        row = make_signature_row(created_at=now, confirmed_at=now)
        row.update(org_opt_in_wording="yes", org_opt_in_at=now, supporter_key=f"k{i}")
        many.append(row)
    with engine.begin() as conn:
        conn.execute(signatures.insert(), many)
    member = type("M", (), {"id": None, "email": "op@example.org"})()
    export_id = exports.start_export(engine, CAMPAIGN, exports.SUPPORTERS, member)  # type: ignore[arg-type]
    stream = exports.csv_stream(
        engine, exports.supporters_query(CAMPAIGN), exports.SUPPORTER_HEADER, export_id
    )
    header = next(stream)
    first = next(stream)
    assert header.count("\r\n") == 1 and first.count("\r\n") == exports.BATCH
    with engine.connect() as conn:  # not finished yet: nothing counted
        assert conn.execute(sa.text("SELECT rows FROM staff_exports")).scalar_one() is None
    rest = list(stream)
    assert [chunk.count("\r\n") for chunk in rest] == [exports.BATCH, 7]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT rows FROM staff_exports")).scalar_one() == len(many)


def test_safe_cell() -> None:
    assert [exports.safe_cell(v) for v in ("=1+1", "+44", "-2", "@SUM", "\tx", "ok", 3, None)] == [
        "'=1+1",
        "'+44",
        "'-2",
        "'@SUM",
        "'\tx",
        "ok",
        3,
        "",
    ]


def test_the_mp_is_the_one_the_letters_went_to_on_the_dashboard_and_in_the_csv(
    settings, engine
) -> None:
    """Issue 26: an MP found by the resolver's remote look-up is not in the reference ``mps``
    table; the dashboard and the constituency CSV named nobody ("not in the MP data", blank).
    Now both name the MP the letters went to (the latest, when a seat changed hands), with the
    party when the reference data names that same MP."""
    now = datetime.now(UTC)
    remote = ("E14001064", "Altrincham and Sale West")  # in no reference table of the tests

    def signed(place: tuple[str, str], mp: str | None, minutes_ago: int) -> dict[str, Any]:
        at = now - timedelta(minutes=minutes_ago)
        row = make_signature_row(created_at=at, confirmed_at=at, constituency=place)
        row["target_name"] = mp
        return row

    with engine.begin() as conn:
        conn.execute(
            signatures.insert(),
            [
                signed(remote, "Priya Remote", 10),
                signed(remote, "Priya Remote", 5),
                # Aldershot changed hands: the older letter went to the member before.
                signed(ALDERSHOT, "Old Member", 30),
                signed(ALDERSHOT, "Alex Demo", 3),
                # Sevenoaks: the look-up knew a newer MP than the reference data.
                signed(SEVENOAKS, "New Member", 1),
                # Demo Quiet: still being resolved, no target yet: the reference data's MP.
                signed(QUIET, None, 1),
            ],
        )
    client = client_as(settings, engine, "viewer@example.org", role="viewer")
    rows = table_rows(client.get(f"/admin/c/{CAMPAIGN}").text, "seats")
    assert rows == [
        ["Aldershot", "Alex Demo (Demo Party)", "2"],
        ["Altrincham and Sale West", "Priya Remote", "2"],
        ["Demo Quiet", "Robin Quiet (Demo Party)", "1"],
        ["Sevenoaks", "New Member", "1"],
    ]
    assert read_csv(client.get(f"/admin/c/{CAMPAIGN}/exports/constituencies.csv")) == [
        exports.CONSTITUENCY_HEADER,
        ["E14001063", "Aldershot", "Alex Demo", "Demo Party", "2"],
        ["E14001064", "Altrincham and Sale West", "Priya Remote", "", "2"],
        ["E14001465", "Sevenoaks", "New Member", "", "1"],
        ["E14009902", "Demo Quiet", "Robin Quiet", "Demo Party", "1"],
    ]


def test_letters_to_targets_are_counted_apart_from_emails_to_supporters(settings, engine) -> None:
    """Issue 26: "Letters and emails by state: sent 30" added confirmations and copies to the
    letters. Letters to targets (one each, also when it went in a digest), digests and emails to
    supporters are now counted apart, and the chart shows the letters only."""
    now = datetime.now(UTC)
    rows = [make_signature_row(created_at=now, confirmed_at=now) for _ in range(4)]
    digest_id = uuid.uuid4()

    def email(signature_id: uuid.UUID, purpose: str, state: str) -> dict[str, Any]:
        return {
            "signature_id": signature_id,
            "purpose": purpose,
            "campaign": CAMPAIGN,
            "state": state,
            "message_id": f"<{purpose}.{signature_id}@dearmp.invalid>",
            "recipient": "someone@example.org",
            "subject": "s",
            "created_at": now,
        }

    sent = [email(r["id"], p, "sent") for r in rows for p in ("confirmation", "copy")]
    with engine.begin() as conn:
        conn.execute(signatures.insert(), rows)
        conn.execute(
            letters.insert(),
            [
                *sent,
                email(rows[0]["id"], "letter", "sent"),
                email(rows[1]["id"], "letter", "sent"),
                email(rows[1]["id"], "fixed_copy", "sent"),
                email(rows[2]["id"], "letter", "failed"),
                email(rows[3]["id"], "letter", "queued"),
                email(rows[3]["id"], "reminder", "created"),
                email(digest_id, "digest", "sent"),
            ],
        )
    client = client_as(settings, engine, "viewer@example.org", role="viewer")
    html = client.get(f"/admin/c/{CAMPAIGN}").text
    head = html.split('id="emails-by-state"', 1)[1].split("</thead>", 1)[0]
    assert re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', head) == [
        "State",
        "Letters to targets",
        "Daily digests to MPs&#39; offices",
        "Emails to supporters",
    ]
    table = {r[0]: r[1:] for r in table_rows(html, "emails-by-state")}
    assert table["Sent"] == ["3", "1", "8"]
    assert table["Failed"] == ["1", "0", "0"]
    assert table["Queued"] == ["1", "0", "0"]
    assert table["Created"] == ["0", "0", "1"]
    assert (
        "Letters from this campaign&#x27;s supporters to its targets, by state: 0 created, "
        "0 sending, 3 sent, 1 failed, 0 held, 0 bounced, 1 queued." in html
    )
