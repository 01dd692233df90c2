"""The campaign model's schedule and targets, the staff form's mapping to it, and YAML out and
back (issue 18). No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.intake.admin import campaign_form
from services.intake.admin.versions import with_status
from shared.campaigns import (
    Campaign,
    CampaignError,
    campaign_yaml,
    read_campaign_file,
    read_campaign_yaml,
)
from tests.support import ROOT

NOW = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
FILES = sorted((ROOT / "campaigns").glob("*.yaml"))


def campaign(**changes: object) -> Campaign:
    data = read_campaign_file(FILES[0]).model_dump()
    return Campaign.model_validate({**data, **changes})


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, "open"),
        ({"open": False}, "paused"),
        ({"opens_at": NOW + timedelta(hours=1)}, "scheduled"),
        ({"opens_at": NOW - timedelta(hours=1)}, "open"),
        ({"closes_at": NOW}, "closed"),
        ({"closes_at": NOW, "open": False}, "closed"),
        ({"opens_at": NOW + timedelta(hours=1), "open": False}, "paused"),
    ],
)
def test_status_follows_the_switch_and_the_schedule(changes: dict, status: str) -> None:
    assert campaign(**changes).status(NOW) == status


def test_the_file_keeps_open_as_the_switch() -> None:
    paused = campaign(open=False)
    assert paused.model_dump(mode="json")["open"] is False and not paused.open
    assert "switched_on" not in paused.model_dump(mode="json")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_yaml_out_and_back_is_the_same_campaign(path: Path) -> None:
    found = read_campaign_file(path)
    again = read_campaign_yaml(campaign_yaml(found, "alpha"), "x.yaml")
    assert again.model_dump(exclude={"organisation"}) == found.model_dump(exclude={"organisation"})
    assert again.organisation == "alpha"


def test_both_needs_the_fixed_target_and_the_file_says_so() -> None:
    text = "slug: ab\ntitle: t\ntarget: {kind: both, name: X}\nletter: {subject: s, body: b}\n"
    with pytest.raises(CampaignError, match="f.yaml: target: both needs the name and email"):
        read_campaign_yaml(text, "f.yaml")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_form_shows_a_campaign_and_reads_it_back_unchanged(path: Path) -> None:
    found = read_campaign_file(path)
    result = campaign_form.checked(
        campaign_form.values_of(found), slug=found.slug, switched_on=True
    )
    assert result.errors == {} and result.campaign == found


def test_the_form_puts_each_problem_at_its_field() -> None:
    values = campaign_form.values_of(read_campaign_file(FILES[0]))
    bad = {
        **values,
        "target_kind": "fixed",
        "target_name": "The Home Secretary",
        "target_email": "home.secretary@example.gov.uk",
        "target_handle": "not a handle!",
        "letter_editable": "yes",
        "closes_at": "31/01",
    }
    errors = campaign_form.checked(bad).errors
    assert set(errors) >= {"target_handle", "letter_editable", "closes_at"}
    assert errors["letter_editable"].startswith("Supporters may edit the letter: true needs")


def test_opening_clears_a_date_to_come_and_closing_sets_now() -> None:
    scheduled = campaign(opens_at=NOW + timedelta(days=1), open=False)
    opened = with_status(scheduled, "open", NOW)
    assert opened.status(NOW) == "open" and opened.opens_at is None
    closed = with_status(opened, "close", NOW)
    assert closed.closes_at == NOW and closed.status(NOW) == "closed"
    assert with_status(closed, "open", NOW).status(NOW) == "open"
    assert with_status(opened, "pause", NOW).status(NOW) == "paused"


@pytest.mark.parametrize("shown", [True, False])
def test_show_reply_rate_is_on_the_form_and_read_back(shown: bool) -> None:
    """Issue 26: ``show_reply_rate`` was not on the staff editor, so saving the form turned it
    off. It is a checkbox now, shown as stored and read back unchanged."""
    found = campaign(show_reply_rate=shown)
    values = campaign_form.values_of(found)
    assert values["show_reply_rate"] == ("yes" if shown else "")
    assert "show_reply_rate" in campaign_form.LABELS
    result = campaign_form.checked(values, slug=found.slug, switched_on=True)
    assert result.errors == {} and result.campaign == found
    unticked = {k: v for k, v in values.items() if k != "show_reply_rate"}
    assert campaign_form.checked(unticked, slug=found.slug).campaign.show_reply_rate is False  # type: ignore[union-attr]
