from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.campaigns import (
    Campaign,
    CampaignError,
    campaign_files,
    message_block,
    read_campaign_file,
)
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


EDITABLE = (
    "slug: ok-slug\ntitle: T\ntarget: {kind: fixed, name: Home Secretary, email: hs@example.org}\n"
    "letter:\n  editable: true\n  subject: s\n  body: |\n"
)


def test_the_shipped_editable_campaign_marks_its_message_block() -> None:
    campaign = read_campaign_file(ROOT / "campaigns" / "home-secretary-support.yaml")
    assert campaign.letter.editable
    block = message_block(campaign.letter.body)
    assert block is not None
    body = campaign.letter.body
    # The greeting and the sign-off stay outside the part supporters may change.
    assert body.index("Dear Home Secretary,") < body.index("{% block message")
    assert body.index("{%- endblock %}") < body.index("{{ supporter.full_name }}")


def test_an_editable_letter_needs_a_message_block(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EDITABLE + "    Dear you,\n    Words.\n")
    with pytest.raises(
        CampaignError,
        match=r"bad\.yaml: letter\.editable: true needs \{% block message %\}…\{% endblock %\} "
        r"in letter\.body",
    ):
        read_campaign_file(bad)
    # The HTML template, when there is one, needs it too.
    bad.write_text(
        EDITABLE + "    {% block message %}Words.{% endblock %}\n  html: <p>Words.</p>\n"
    )
    with pytest.raises(CampaignError, match=r"bad\.yaml: letter\.editable: .* in letter\.html"):
        read_campaign_file(bad)
    # A block named otherwise is not the message block.
    bad.write_text(EDITABLE + "    {% block words %}Words.{% endblock %}\n")
    with pytest.raises(CampaignError, match=r"letter\.editable"):
        read_campaign_file(bad)
    # Not editable: no block needed.
    bad.write_text(EDITABLE.replace("editable: true", "editable: false") + "    Words.\n")
    assert not read_campaign_file(bad).letter.editable


def test_the_message_block_cannot_hold_what_is_only_known_when_someone_signs(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EDITABLE + "    {% block message %}I am {{ supporter.first_name }}.{% endblock %}\n"
    )
    with pytest.raises(
        CampaignError, match=r"bad\.yaml: letter: the message block in body cannot use supporter"
    ):
        read_campaign_file(bad)
    mp = EDITABLE.replace(
        "{kind: fixed, name: Home Secretary, email: hs@example.org}", "{kind: mp}"
    )
    bad.write_text(mp + "    {% block message %}Dear {{ target.name }}.{% endblock %}\n")
    with pytest.raises(CampaignError, match=r"letter: the message block in body cannot use target"):
        read_campaign_file(bad)
    # A fixed target's name and the campaign's own fields are known: they may be used.
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        EDITABLE
        + "    {% block message %}To {{ target.name }} about {{ campaign.title }}.{% endblock %}\n"
    )
    assert read_campaign_file(ok).letter.editable


def test_a_stored_campaign_from_before_the_rule_loads_as_not_editable() -> None:
    """A definition saved before editable letters had a message block stays readable (pages and
    letters keep working) and is simply not editable until it is loaded again."""
    stored = {
        "slug": "ok-slug",
        "title": "T",
        "target": {"kind": "fixed", "name": "HS", "email": "hs@example.org"},
        "letter": {"subject": "s", "body": "Dear you, {{ supporter.full_name }}", "editable": True},
    }
    with pytest.raises(ValidationError):
        Campaign.model_validate(stored)
    assert not Campaign.model_validate(stored, context={"stored": True}).letter.editable
