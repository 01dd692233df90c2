"""Tables owned by the mailer."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import metadata

# One row per (signature, purpose): confirmation, letter, unresolvable notice...
# created → sending → sent | failed. ``sends`` counts SMTP hand-overs; above 1 means a crash
# between the SMTP server's acceptance and our commit may have caused a duplicate.
letters = sa.Table(
    "letters",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("signature_id", sa.Uuid, nullable=False),
    sa.Column("purpose", sa.String(30), nullable=False),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text),
    sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("signature_id", "purpose", name="uq_letters_signature_purpose"),
    sa.Index("ix_letters_state", "state"),
)
