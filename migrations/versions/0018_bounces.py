"""bounces: letters ``held`` and ``bounced``, the bounces received, the addresses that bounced

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 14:00:00

``letters.state`` may now be ``held`` (its recipient's address bounced for good: it waits) or
``bounced`` (taken, then bounced), with ``letters.bounced_at``. ``bounces``: every bounce matched
to an email by its VERP return path (hard or soft, the reason with addresses removed).
``bounced_addresses``: addresses that bounced for good, by keyed hash (an MP's public office
address also in clear), that nothing is sent to until cleared. Nothing exists before this
revision, so there is nothing to fill in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# shared/states.py as of this revision (a migration keeps its own copy: it must not change later).
BEFORE = ("created", "sending", "sent", "failed")
AFTER = (*BEFORE, "held", "bounced")


def _states(states: tuple[str, ...]) -> str:
    return f"state IN ({', '.join(repr(s) for s in states)})"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_letters_state"), "letters", type_="check")
    op.create_check_constraint(op.f("ck_letters_state"), "letters", _states(AFTER))
    op.add_column("letters", sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "bounces",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("letter_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("how", sa.String(length=10), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('hard', 'soft')", name=op.f("ck_bounces_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
    )
    op.create_index("ix_bounces_received_at", "bounces", ["received_at"])
    op.create_table(
        "bounced_addresses",
        sa.Column("address_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('target', 'supporter')", name=op.f("ck_bounced_addresses_kind")
        ),
        sa.PrimaryKeyConstraint("address_key", name=op.f("pk_bounced_addresses")),
    )


def downgrade() -> None:
    op.drop_table("bounced_addresses")
    op.drop_index("ix_bounces_received_at", table_name="bounces")
    op.drop_table("bounces")
    op.drop_column("letters", "bounced_at")
    op.execute(
        "UPDATE letters SET state = 'sent' WHERE state = 'bounced';"
        " UPDATE letters SET state = 'created' WHERE state = 'held'"
    )
    op.drop_constraint(op.f("ck_letters_state"), "letters", type_="check")
    op.create_check_constraint(op.f("ck_letters_state"), "letters", _states(BEFORE))
