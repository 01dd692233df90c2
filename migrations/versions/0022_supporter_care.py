"""supporter care (issue 26): one subscriber row per person and campaign

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 01:00:00

A supporter who signed again (a replaced signature) had two ``subscribers`` rows for one address
and campaign, and got every update twice. The rows are merged here: the newest row (the newest
signature) stays and keeps the ids of the others in ``earlier_signature_ids`` (the unsubscribe
links already sent name them); it takes the latest choice any of them recorded (someone who
pressed "unsubscribe" in one of the two copies has left); the others' update deliveries move to
it where it has none for that update. Then ``(campaign, email_normalised)`` is unique.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# For each (campaign, address) with more than one row: the row that stays (the newest) and the
# row whose choice holds (the latest to change, a row's own confirmation counting as a choice).
GROUPS = """
CREATE TEMPORARY TABLE subscriber_merge ON COMMIT DROP AS
SELECT s.id, s.signature_id,
       first_value(s.id) OVER w AS keep_id,
       first_value(s.id) OVER (PARTITION BY s.campaign, s.email_normalised
                               ORDER BY coalesce(s.preference_changed_at, s.created_at) DESC,
                                        s.id DESC) AS choice_id
FROM subscribers s
WHERE (s.campaign, s.email_normalised) IN (
    SELECT campaign, email_normalised FROM subscribers
    GROUP BY campaign, email_normalised HAVING count(*) > 1)
WINDOW w AS (PARTITION BY s.campaign, s.email_normalised ORDER BY s.created_at DESC, s.id DESC)
"""
MERGE = (
    # The kept row: the others' signature ids, and the latest choice.
    """
    UPDATE subscribers k SET
        earlier_signature_ids = k.earlier_signature_ids || ARRAY(
            SELECT m.signature_id FROM subscriber_merge m
            WHERE m.keep_id = k.id AND m.id <> k.id ORDER BY m.id),
        subscribed = c.subscribed,
        unsubscribed_at = c.unsubscribed_at,
        preference_changed_at = c.preference_changed_at
    FROM subscriber_merge g JOIN subscribers c ON c.id = g.choice_id
    WHERE g.id = k.id AND g.keep_id = k.id
    """,
    # The others' deliveries, where the kept row has none for that update (the record of what
    # was emailed to the person: subject access shows it).
    """
    UPDATE update_deliveries d SET subscriber_id = m.keep_id
    FROM subscriber_merge m
    WHERE d.subscriber_id = m.id AND m.id <> m.keep_id
      AND NOT EXISTS (SELECT 1 FROM update_deliveries k
                      WHERE k.job_id = d.job_id AND k.subscriber_id = m.keep_id)
      AND d.id = (SELECT min(d2.id) FROM update_deliveries d2
                  JOIN subscriber_merge m2 ON m2.id = d2.subscriber_id
                  WHERE d2.job_id = d.job_id AND m2.keep_id = m.keep_id AND m2.id <> m2.keep_id)
    """,
    "DELETE FROM subscribers s USING subscriber_merge m WHERE s.id = m.id AND m.id <> m.keep_id",
)


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column(
            "earlier_signature_ids",
            postgresql.ARRAY(sa.Uuid()),
            nullable=False,
            server_default=sa.text("'{}'::uuid[]"),
        ),
    )
    op.add_column("subscribers", sa.Column("signed_at", sa.DateTime(timezone=True)))
    # Rows from before: confirmed (created) shortly after they were signed; near enough to order.
    op.execute("UPDATE subscribers SET signed_at = created_at")
    op.execute(GROUPS)
    for statement in MERGE:
        op.execute(statement)
    op.create_unique_constraint(
        "uq_subscribers_campaign_email", "subscribers", ["campaign", "email_normalised"]
    )
    op.create_index(
        "ix_subscribers_earlier_signature_ids",
        "subscribers",
        ["earlier_signature_ids"],
        postgresql_using="gin",
    )
    _help_requests_up()


def _help_requests_up() -> None:
    """Help requests get an id for their events and emails, and the language of the page they
    were sent from; staff answers are kept with them (and go with them)."""
    op.add_column(
        "help_requests",
        sa.Column(
            "public_id", sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()")
        ),
    )
    op.create_unique_constraint("help_requests_public_id_key", "help_requests", ["public_id"])
    op.add_column(
        "help_requests",
        sa.Column("language", sa.String(length=5), nullable=False, server_default="en"),
    )
    op.create_table(
        "help_replies",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "request_id",
            sa.BigInteger(),
            sa.ForeignKey("help_requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("staff_email", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_help_replies_request_id", "help_replies", ["request_id"])


def downgrade() -> None:
    op.drop_table("help_replies")
    op.drop_column("help_requests", "language")
    op.drop_column("help_requests", "public_id")
    # The merged rows stay merged (the duplicates were the defect).
    op.drop_index("ix_subscribers_earlier_signature_ids", table_name="subscribers")
    op.drop_constraint("uq_subscribers_campaign_email", "subscribers", type_="unique")
    op.drop_column("subscribers", "signed_at")
    op.drop_column("subscribers", "earlier_signature_ids")
