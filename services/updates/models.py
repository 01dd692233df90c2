"""Tables owned by the updates service: its own subscriber list, built only from events."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import metadata

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("signature_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("first_name", sa.Text, nullable=False),
    sa.Column("subscribed", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_subscribers_campaign_id", "campaign", "id"),
)
