"""Roles and organisation details, without a database (issue 18)."""

from __future__ import annotations

import pytest

from services.intake.admin.accounts import StaffError, checked_role
from services.intake.admin.roles import Power, Role, can
from shared.organisations import OrganisationError, checked


def test_what_each_role_may_do() -> None:
    table = {
        Role.VIEWER: {Power.READ},
        Role.EDITOR: {Power.READ, Power.EDIT},
        Role.OWNER: {Power.READ, Power.EDIT, Power.ACCOUNTS},
        Role.OPERATOR: set(Power),
    }
    for role, powers in table.items():
        assert {p for p in Power if can(role, p)} == powers, role
    assert not any(can("admin", p) for p in Power)  # an unknown role grants nothing


def test_an_accounts_role_follows_its_organisation() -> None:
    assert checked_role(None, None) is Role.OPERATOR
    assert checked_role(None, "ecpat") is Role.VIEWER  # least power unless it says
    assert checked_role("owner", "ecpat") is Role.OWNER
    for role, org in (("owner", None), ("operator", "ecpat"), ("boss", "ecpat")):
        with pytest.raises(StaffError):
            checked_role(role, org)


def test_organisation_details_are_checked_field_by_field() -> None:
    org = checked(slug="ecpat-uk", name=" ECPAT UK ", privacy_url="https://ecpat.org.uk/privacy")
    assert org.name == "ECPAT UK" and org.sender_name == "ECPAT UK via Dear MP"
    assert checked(slug="ab", name="A", privacy_text="Our notice").privacy_text == "Our notice"
    wrong = {
        "slug": {"slug": "Not A Slug"},
        "colour": {"colour": "red"},
        "website": {"website": "http://insecure.example"},
        "logo_url": {"logo_url": "javascript:alert(1)"},
        "sender_name": {"sender_name": "Evil <evil@example.org>"},
        "list_opt_in": {"list_opt_in": "two\nlines"},
        "privacy notice": {"privacy_url": ""},
    }
    for field, change in wrong.items():
        fields = {"slug": "ok", "name": "OK", "privacy_url": "/privacy", **change}
        with pytest.raises(OrganisationError, match=field):
            checked(**fields)
