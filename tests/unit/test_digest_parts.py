"""Digest mode's parts without I/O: the campaign option (file and staff form), and the digest
email itself (rows, mailto links, the CSV attachment, formulas defused)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date

import pytest

from services.intake.admin import campaign_form
from services.mailer import compose
from shared.campaigns import Campaign, CampaignError, read_campaign_file, read_campaign_yaml
from shared.config import Settings
from tests.support import ROOT

FILE = sorted((ROOT / "campaigns").glob("*.yaml"))[0]


def test_delivery_is_individual_unless_a_campaign_asks_for_a_digest() -> None:
    campaign = read_campaign_file(FILE)
    assert campaign.delivery == "individual"
    text = FILE.read_text(encoding="utf-8") + "\ndelivery: digest\n"
    assert read_campaign_yaml(text, "x.yaml").delivery == "digest"
    with pytest.raises(CampaignError, match="delivery"):
        read_campaign_yaml(FILE.read_text(encoding="utf-8") + "\ndelivery: weekly\n", "x.yaml")


def test_the_staff_form_keeps_the_digest_option() -> None:
    campaign = read_campaign_file(FILE).model_copy(update={"delivery": "digest"})
    values = campaign_form.values_of(campaign)
    assert values["delivery_digest"] == "yes"
    again = campaign_form.checked(values, slug=campaign.slug)
    assert again.campaign is not None and again.campaign.delivery == "digest"
    values["delivery_digest"] = ""
    assert campaign_form.checked(values, slug=campaign.slug).campaign.delivery == "individual"  # type: ignore[union-attr]


def test_a_digest_lists_every_row_with_a_reply_link_and_a_safe_csv() -> None:
    campaign: Campaign = read_campaign_file(FILE)
    entries = [
        {
            "name": f"Jo Bloggs {n}",
            "email": f"jo{n}@example.org",
            "address": ["1 Test Street", "Aldershot", "GU11 1AA"],
            "words": '=HYPERLINK("http://x")' if n == 0 else f"Words <b>{n}</b>",
            "target": "Real Member",
        }
        for n in range(3)
    ]
    digest_id = uuid.uuid4()
    settings = Settings()
    msg = compose.digest(
        digest_id, campaign, "real.member.mp@parliament.uk", date(2027, 1, 31), entries, settings
    )
    assert msg["Message-ID"] == f"<digest.{digest_id}@{settings.mail_domain}>"
    assert "3 constituents" in str(msg["Subject"]) and "31 January 2027" in str(msg["Subject"])
    assert msg["Reply-To"].addresses[0].addr_spec == f"hello@{settings.mail_domain}"  # issue 26
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith("Dear Real Member,")
    for n in range(3):
        assert f"mailto:jo{n}@example.org" in text
    html = msg.get_body(("html",)).get_content()
    assert "&lt;b&gt;1&lt;/b&gt;" in html
    assert all(html.count(f'href="mailto:jo{n}@example.org"') == 1 for n in range(3))
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == f"{campaign.slug}-2027-01-31.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert [r["name"] for r in rows] == ["Jo Bloggs 0", "Jo Bloggs 1", "Jo Bloggs 2"]
    assert rows[0]["words"].startswith("'=")
    assert rows[1]["address"] == "1 Test Street, Aldershot, GU11 1AA"


def test_a_days_digest_goes_at_the_digest_hour_of_the_next_day_uk_time() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from services.mailer.digests import ended_by

    at = datetime(2027, 7, 1, 8, 30, tzinfo=ZoneInfo("Europe/London"))  # 07:30 UTC, summer
    assert ended_by(at, 0) == date(2027, 7, 1)  # 30 June is over
    assert ended_by(at, 8) == date(2027, 7, 1)
    assert ended_by(at, 9) == date(2027, 6, 30)  # not yet: 29 June and before only
