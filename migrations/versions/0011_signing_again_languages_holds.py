"""signing again, the supporter's language, held signatures: signatures.language and sent_at,
the status "held"; the language of pending confirmations and subscribers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# shared/states.py as of this revision (a migration keeps its own copy: it must not change later).
BEFORE = ("pending", "confirmed", "resolved", "unresolvable", "sent", "failed", "erased")
AFTER = (*BEFORE, "held")


def check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _language() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("language", sa.String(length=5), server_default="en", nullable=False)


def upgrade() -> None:
    op.add_column("signatures", _language())
    op.add_column("signatures", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("pending_confirmations", _language())
    op.add_column("subscribers", _language())
    op.drop_constraint(op.f("ck_signatures_status"), "signatures", type_="check")
    op.create_check_constraint(op.f("ck_signatures_status"), "signatures", check("status", AFTER))


def downgrade() -> None:
    op.execute("UPDATE signatures SET status = 'confirmed' WHERE status = 'held'")
    op.drop_constraint(op.f("ck_signatures_status"), "signatures", type_="check")
    op.create_check_constraint(op.f("ck_signatures_status"), "signatures", check("status", BEFORE))
    op.drop_column("subscribers", "language")
    op.drop_column("pending_confirmations", "language")
    op.drop_column("signatures", "sent_at")
    op.drop_column("signatures", "language")
