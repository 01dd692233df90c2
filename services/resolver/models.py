"""Tables owned by the resolver."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import metadata
from shared.erased import erased_supporters_table

resolutions = sa.Table(
    "resolutions",
    metadata,
    sa.Column("signature_id", sa.Uuid, primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # resolved | unresolvable
    sa.Column("reason", sa.String(40)),
    sa.Column("constituency_code", sa.String(9)),
    sa.Column("target_name", sa.Text),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
)

# Signatures waiting for a seat to be filled (vacant until a by-election): kept, retried daily,
# delivered to the new MP. Never dropped.
held_signatures = sa.Table(
    "held_signatures",
    metadata,
    sa.Column("signature_id", sa.Uuid, primary_key=True),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("constituency_code", sa.String(9)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_held_signatures_next_attempt_at", "next_attempt_at"),
)

# Supporters who asked to be erased (by keyed hash only): a signature.confirmed of theirs that
# arrives late is neither looked up, held nor resolved (shared.erased).
erased_supporters = erased_supporters_table("resolver_erased_supporters")

# Answers from postcodes.io and the Members API, cached (remote.py).
resolver_cache = sa.Table(
    "resolver_cache",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", JSONB, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
