"""Tables owned by the resolver."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import metadata

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
