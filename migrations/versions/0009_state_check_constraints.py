"""signature statuses and letter states: one vocabulary, enforced by CHECK constraints

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# shared/states.py as of this revision (a migration keeps its own copy: it must not change later).
SIGNATURE_STATUSES = ("pending", "confirmed", "resolved", "unresolvable", "sent", "failed", "erased")
LETTER_STATES = ("created", "sending", "sent", "failed")


def check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    # Names only a test helper ever wrote; the handlers wrote "sent" and "failed".
    op.execute("UPDATE signatures SET status = 'sent' WHERE status = 'letter_sent'")
    op.execute("UPDATE signatures SET status = 'failed' WHERE status = 'letter_failed'")
    op.create_check_constraint(
        op.f("ck_signatures_status"), "signatures", check("status", SIGNATURE_STATUSES)
    )
    op.create_check_constraint(op.f("ck_letters_state"), "letters", check("state", LETTER_STATES))


def downgrade() -> None:
    op.drop_constraint(op.f("ck_letters_state"), "letters", type_="check")
    op.drop_constraint(op.f("ck_signatures_status"), "signatures", type_="check")
