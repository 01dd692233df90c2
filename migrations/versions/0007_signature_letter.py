"""intake: signatures keep the supporter's own wording of an editable letter

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 08:36:50.167185
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "" means the campaign's own words. A constant default: no table rewrite (PostgreSQL 11+).
    op.add_column("signatures", sa.Column("letter", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column("signatures", "letter")
