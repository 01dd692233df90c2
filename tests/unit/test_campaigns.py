from __future__ import annotations

from pathlib import Path

import pytest

from shared.campaigns import CampaignError, campaign_files, read_campaign_file
from tests.support import ROOT


def test_shipped_campaigns_are_valid() -> None:
    loaded = [read_campaign_file(p) for p in campaign_files(ROOT / "campaigns")]
    kinds = sorted(c.target.kind for c in loaded)
    assert kinds == ["fixed", "mp"]


def test_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "slug: ok-slug\ntitle: T\ntarget: {kind: fixed, name: Home Secretary}\n"
        "letter: {subject: s, body: b}\n"
    )
    with pytest.raises(CampaignError, match=r"bad\.yaml: target: .*name and email"):
        read_campaign_file(bad)
    bad.write_text(
        "slug: ok-slug\ntitle: T\ntarget: {kind: mp}\nletter: {subject: s, body: '{% if %}'}\n"
    )
    with pytest.raises(CampaignError, match=r"bad\.yaml: letter\.body: template error"):
        read_campaign_file(bad)
