"""campaigns edited from the staff pages: each campaign's version, every version kept, and the
version each letter was rendered with

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 12:20:00

A campaign carries the number of its current version (``campaigns.version``); every saved
version of its definition is kept in ``campaign_versions`` (who saved it, when), so an organiser
can see the exact text each letter was written from; the mailer records in ``letters`` the
version it rendered a letter with (``letters.campaign_version``; NULL for rows written before
this revision and for emails that are not rendered from the campaign's letter). Every campaign
that exists gets its current definition as version 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "campaigns", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )
    op.create_table(
        "campaign_versions",
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSONB(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        # The staff account's email, or how it was saved ("campaign file", "migration 0015").
        sa.Column("saved_by", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("campaign", "version", name=op.f("pk_campaign_versions")),
        sa.ForeignKeyConstraint(
            ["campaign"],
            ["campaigns.slug"],
            name=op.f("fk_campaign_versions_campaign_campaigns"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    )
    op.execute(
        "INSERT INTO campaign_versions (campaign, version, definition, saved_at, saved_by) "
        "SELECT slug, 1, definition, updated_at, 'migration 0015' FROM campaigns"
    )
    op.add_column("letters", sa.Column("campaign_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("letters", "campaign_version")
    op.drop_table("campaign_versions")
    op.drop_column("campaigns", "version")
