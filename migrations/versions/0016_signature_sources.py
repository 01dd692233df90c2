"""where each signature came from, and the staff pages' log of CSV exports

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 12:40:00

``signatures`` gains ``source``, ``utm_source``, ``utm_medium`` and ``utm_campaign``: the tags on
the campaign link the supporter signed from (services/intake/sources.py; NULL for none and for
every signature made before this revision). ``staff_exports`` records every CSV export from the
campaign dashboard: who (the account's email as it was then), when, which export and how many
rows (NULL until the download finished).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SOURCES = ("source", "utm_source", "utm_medium", "utm_campaign")


def upgrade() -> None:
    for name in SOURCES:
        op.add_column("signatures", sa.Column(name, sa.String(length=60), nullable=True))
    op.create_table(
        "staff_exports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_email", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_exports")),
        sa.ForeignKeyConstraint(
            ["campaign"],
            ["campaigns.slug"],
            name=op.f("fk_staff_exports_campaign_campaigns"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_staff_exports_staff_id_staff"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        "ix_staff_exports_campaign_created_at", "staff_exports", ["campaign", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_staff_exports_campaign_created_at", table_name="staff_exports")
    op.drop_table("staff_exports")
    for name in reversed(SOURCES):
        op.drop_column("signatures", name)
