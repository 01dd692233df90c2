"""Migration 0015 (issue 18, campaigns from the staff pages): every campaign that exists gets its
definition as version 1; down and up again."""

from __future__ import annotations

import sqlalchemy as sa


def test_migration_0015_down_and_up(engine, database_url) -> None:
    from alembic import command

    from shared.db import alembic_config, upgrade

    engine.dispose()
    command.downgrade(alembic_config(database_url), "0014")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('campaign_versions')")).scalar() is None
    upgrade(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.slug, c.version, v.version, v.definition = c.definition, v.saved_by "
                "FROM campaigns c JOIN campaign_versions v ON v.campaign = c.slug"
            )
        ).all()
        count = conn.execute(sa.text("SELECT count(*) FROM campaigns")).scalar()
        assert count and len(rows) == count
        assert {tuple(r[1:]) for r in rows} == {(1, 1, True, "migration 0015")}
        assert conn.execute(sa.text("SELECT campaign_version FROM letters LIMIT 0")).all() == []
