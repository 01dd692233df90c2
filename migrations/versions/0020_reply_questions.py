"""reply questions: "Did your MP reply?" (the mailer's questions, intake's answers)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 16:00:00

``reply_questions`` (mailer): one row per letter to a target, for the question "Has your MP
replied?" sent DEARMP_REPLY_QUESTION_AFTER_SECONDS after the letter and its one reminder (the
supporter's email, first name and language until nothing more will go). ``reply_answers``
(intake): the supporter's answer (yes, not yet, no), when, and the reply they may paste, private
to the organisation unless ``share_reply``. Letters sent before this revision get no question.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reply_questions",
        sa.Column("signature_id", sa.Uuid(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("supporter_key", sa.String(length=64), nullable=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=5), server_default="en", nullable=False),
        sa.Column("target_name", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.String(length=10), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("signature_id", name=op.f("pk_reply_questions")),
    )
    op.create_index(
        "ix_reply_questions_open",
        "reply_questions",
        ["created_at"],
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index("ix_reply_questions_supporter_key", "reply_questions", ["supporter_key"])
    op.create_table(
        "reply_answers",
        sa.Column("signature_id", sa.Uuid(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("answer", sa.String(length=10), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=True),
        sa.Column("share_reply", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reply_pasted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "answer IN ('yes', 'not_yet', 'no')", name=op.f("ck_reply_answers_answer")
        ),
        sa.PrimaryKeyConstraint("signature_id", name=op.f("pk_reply_answers")),
    )
    op.create_index("ix_reply_answers_campaign", "reply_answers", ["campaign"])


def downgrade() -> None:
    op.drop_index("ix_reply_answers_campaign", table_name="reply_answers")
    op.drop_table("reply_answers")
    op.drop_index("ix_reply_questions_supporter_key", table_name="reply_questions")
    op.drop_index("ix_reply_questions_open", table_name="reply_questions")
    op.drop_table("reply_questions")
