"""kind to MPs' inboxes: letters ``queued`` for a daily digest or past the daily cap per MP

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 13:00:00

``letters.state`` may now be ``queued``: a digest campaign's letter waiting for its day's digest,
or a letter past ``DEARMP_MP_DAILY_CAP`` waiting for its day. ``letters.due_day`` (the day it is
counted against or waits for), ``held_message`` (a capped letter's whole message),
``digest_entry`` (a digest campaign's letter as a row of the digest) and ``digest_id`` (the
digest it went in). Nothing is queued before this revision, so there is nothing to fill in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# shared/states.py as of this revision (a migration keeps its own copy: it must not change later).
BEFORE = ("created", "sending", "sent", "failed", "held", "bounced")
AFTER = (*BEFORE, "queued")


def _states(states: tuple[str, ...]) -> str:
    return f"state IN ({', '.join(repr(s) for s in states)})"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_letters_state"), "letters", type_="check")
    op.create_check_constraint(op.f("ck_letters_state"), "letters", _states(AFTER))
    op.add_column("letters", sa.Column("due_day", sa.Date(), nullable=True))
    op.add_column("letters", sa.Column("held_message", sa.Text(), nullable=True))
    op.add_column("letters", sa.Column("digest_entry", postgresql.JSONB(), nullable=True))
    op.add_column("letters", sa.Column("digest_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_letters_due_day",
        "letters",
        ["recipient", "due_day"],
        postgresql_where=sa.text("due_day IS NOT NULL"),
    )
    op.create_index(
        "ix_letters_digest_id",
        "letters",
        ["digest_id"],
        postgresql_where=sa.text("digest_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_letters_digest_id", table_name="letters")
    op.drop_index("ix_letters_due_day", table_name="letters")
    op.execute("DELETE FROM letters WHERE state = 'queued'")
    for column in ("digest_id", "digest_entry", "held_message", "due_day"):
        op.drop_column("letters", column)
    op.drop_constraint(op.f("ck_letters_state"), "letters", type_="check")
    op.create_check_constraint(op.f("ck_letters_state"), "letters", _states(BEFORE))
