"""Tables owned by the staff pages (intake's /admin): staff accounts and their sessions."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import metadata

# One row per staff member (``dearmp staff add EMAIL``). The lockout counters live here, in
# Postgres, so five wrong passwords lock the account whichever intake replica saw them.
staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),  # lower-cased
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id, with its parameters
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Signed-in sessions. The cookie holds a signed random token; only its SHA-256 is stored, so a
# copy of this table opens no session. Deleting a row (logout, revocation) ends the session.
staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "staff_id", sa.BigInteger, sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_staff_sessions_staff_id", "staff_id"),
)
