"""Alembic environment: one migration history for every service's tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import services.intake.admin.models
import services.intake.models
import services.mailer.models
import services.resolver.models
import services.updates.models
import shared.inbox
import shared.outbox
import shared.reference
from shared.db import metadata

# Every module that declares tables (each service's models, and the shared platform tables), so
# ``metadata`` knows them all. tests/unit/test_boundaries.py checks that none is missing.
MODEL_MODULES = (
    services.intake.admin.models,
    services.intake.models,
    services.mailer.models,
    services.resolver.models,
    services.updates.models,
    shared.inbox,
    shared.outbox,
    shared.reference,
)
config = context.config


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        # One migration at a time, even when several containers start together.
        connection.exec_driver_sql("SELECT pg_advisory_lock(4242)")
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.exec_driver_sql("SELECT pg_advisory_unlock(4242)")
        connection.commit()


run_migrations_online()
