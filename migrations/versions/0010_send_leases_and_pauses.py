"""the mailer's sending claim becomes a lease; uncertain sends; paused senders

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("letters", sa.Column("lease_owner", sa.String(length=120), nullable=True))
    op.add_column("letters", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "letters",
        sa.Column("uncertain", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "sending_pauses",
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_sending_pauses")),
    )


def downgrade() -> None:
    op.drop_table("sending_pauses")
    op.drop_column("letters", "uncertain")
    op.drop_column("letters", "lease_until")
    op.drop_column("letters", "lease_owner")
