"""Tables the updates service owns for webhooks: one delivery per (endpoint, event), and the
failure log of every attempt that did not get a 2xx. The endpoints themselves are
``shared.webhooks.webhook_endpoints`` (staff and the CLI write them)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import metadata
from shared.webhooks import webhook_endpoints

# pending → delivered | failed (after DEARMP_WEBHOOK_MAX_ATTEMPTS). ``next_attempt_at`` is when a
# pending delivery is due, and doubles as the sender's lease: taking one moves it past the
# request's timeout, so no other sender takes it meanwhile. The body is built once, when the
# event is handled: every attempt sends the same bytes with the same event id.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "endpoint_id",
        sa.BigInteger,
        sa.ForeignKey(webhook_endpoints.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", sa.Uuid, nullable=False),  # X-DearMP-Event-Id
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("signature_id", sa.Uuid, nullable=False),
    # shared.supporters.supporter_key: an erasure request finds the person's deliveries by it.
    sa.Column("supporter_key", sa.String(64)),
    sa.Column("body", sa.LargeBinary),  # the JSON POSTed; None once past retention
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),  # delivered, or given up
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("state = 'pending'"),
    ),
    sa.Index("ix_webhook_deliveries_signature_id", "signature_id"),
    sa.Index("ix_webhook_deliveries_supporter_key", "supporter_key"),
    sa.Index("ix_webhook_deliveries_finished_at", "finished_at"),
)

# The failure log: one row per attempt that failed (the status, or what went wrong in a few
# words: never the receiver's answer, which might echo the body). Goes with its delivery.
webhook_failures = sa.Table(
    "webhook_failures",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "delivery_id",
        sa.BigInteger,
        sa.ForeignKey(webhook_deliveries.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("attempt", sa.SmallInteger, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.SmallInteger),  # None: no answer (refused, timed out)
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("gave_up", sa.Boolean, nullable=False, server_default=sa.false()),
)
