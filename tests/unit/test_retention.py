"""Every column of every table holding personal data has a retention rule (shared/retention.py)
that names a real setting, and docs/privacy.md shows each rule; every other column is declared
as holding none. A new column fails this until someone decides."""

from __future__ import annotations

import re

# Each import declares its tables in the one MetaData.
import services.intake.admin.models  # noqa: F401
import services.intake.models  # noqa: F401
import services.mailer.models  # noqa: F401
import services.resolver.models  # noqa: F401
import services.updates.models  # noqa: F401
import shared.inbox  # noqa: F401
import shared.outbox  # noqa: F401
import shared.reference  # noqa: F401
from shared.config import Settings
from shared.db import metadata
from shared.retention import NOT_PERSONAL, PERSONAL
from tests.support import ROOT


def test_every_column_is_either_personal_with_a_rule_or_declared_not_personal() -> None:
    problems = []
    for table in metadata.tables.values():
        personal = PERSONAL.get(table.name, {})
        other = NOT_PERSONAL.get(table.name, set())
        for column in table.columns:
            if column.name in personal and column.name in other:
                problems.append(f"{table.name}.{column.name}: both personal and not")
            elif column.name not in personal and column.name not in other:
                problems.append(f"{table.name}.{column.name}: no rule (shared/retention.py)")
    declared = {(t, c) for t, cols in PERSONAL.items() for c in cols}
    declared |= {(t, c) for t, cols in NOT_PERSONAL.items() for c in cols}
    real = {(t.name, c.name) for t in metadata.tables.values() for c in t.columns}
    problems += [f"{t}.{c}: declared but no such column" for t, c in sorted(declared - real)]
    assert not problems, "\n".join(problems)


def test_every_rule_names_a_real_setting_and_is_in_the_privacy_notice() -> None:
    doc = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    for table, columns in PERSONAL.items():
        for column, rule in columns.items():
            if rule.setting is not None:
                assert rule.setting in Settings.model_fields, (table, column, rule.setting)
                env = f"DEARMP_{rule.setting.upper()}"
                assert env in doc, f"docs/privacy.md does not mention {env}"
            row = re.search(rf"^\| `{table}` \|[^\n]*`{column}`", doc, re.M)
            assert row, f"docs/privacy.md has no row for {table}.{column}"
