"""Who may do what on the staff pages.

A platform **operator** runs Dear MP itself: every organisation's campaigns, the dead-letter
queues, every account. Everyone else belongs to one organisation and sees only its campaigns (and
their supporters, letters and updates): a **viewer** reads, an **editor** also changes campaigns
(publishes updates, marks help requests handled), an **owner** also manages the organisation's
staff accounts. ``Role.can`` is the one place this is decided.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class Power(StrEnum):
    READ = "read"  # the organisation's campaigns and figures
    EDIT = "edit"  # change a campaign: updates, help requests
    ACCOUNTS = "accounts"  # add and remove the organisation's staff accounts
    PLATFORM = "platform"  # every organisation, the queues: operators only


POWERS: dict[Role, frozenset[Power]] = {
    Role.VIEWER: frozenset({Power.READ}),
    Role.EDITOR: frozenset({Power.READ, Power.EDIT}),
    Role.OWNER: frozenset({Power.READ, Power.EDIT, Power.ACCOUNTS}),
    Role.OPERATOR: frozenset(Power),
}
ORGANISATION_ROLES = (Role.OWNER, Role.EDITOR, Role.VIEWER)
DESCRIPTIONS = {
    Role.OWNER: "Owner: everything an editor can do, and manage the organisation's accounts",
    Role.EDITOR: "Editor: read and change the organisation's campaigns",
    Role.VIEWER: "Viewer: read the organisation's campaigns, change nothing",
    Role.OPERATOR: "Platform operator: every organisation",
}


def can(role: str, power: Power) -> bool:
    try:
        return power in POWERS[Role(role)]
    except ValueError:
        return False  # a role this code does not know grants nothing
