"""resolver and updates remember erased supporters, as the mailer does

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 08:51:57.905816
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("resolver_erased_supporters", "updates_erased_supporters")


def upgrade() -> None:
    for name in TABLES:
        op.create_table(
            name,
            sa.Column("supporter_key", sa.String(length=64), nullable=False),
            sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("supporter_key", name=op.f(f"pk_{name}")),
        )
        # Supporters erased before this revision: the mailer remembered them (same key).
        op.execute(
            f"INSERT INTO {name} (supporter_key, erased_at) "
            "SELECT supporter_key, erased_at FROM erased_supporters"
        )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
