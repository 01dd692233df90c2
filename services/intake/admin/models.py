"""Tables owned by the staff pages (intake's /admin): staff accounts, their sessions, and the log of
CSV exports."""

from __future__ import annotations

import sqlalchemy as sa

from services.intake.admin.roles import Role
from shared.db import metadata
from shared.states import check

# One row per staff account (``dearmp staff add EMAIL``). A platform operator belongs to no
# organisation; every other role belongs to exactly one (roles.py). An address has at most one
# account per organisation and one as an operator, and may have accounts in several
# organisations, each with its own password: an owner adding an address another organisation
# already has gets the same answer as for any new address (accounts.add_staff). ``failed_attempts`` and
# ``locked_until`` are no longer written: wrong passwords slow the client that types them instead
# of locking the account (throttle.py, counted in intake's rate_limits). They stay until their
# rule in shared/retention.py goes with them.
staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),  # lower-cased
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id, with its parameters
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column(
        "organisation",
        sa.String(100),
        sa.ForeignKey("organisations.slug", onupdate="CASCADE", ondelete="CASCADE"),
        index=True,
    ),
    sa.CheckConstraint(check("role", Role), name="role"),
    sa.CheckConstraint(
        f"(role = '{Role.OPERATOR}') = (organisation IS NULL)", name="role_organisation"
    ),
    sa.Index(
        "uq_staff_email_organisation",
        "email",
        "organisation",
        unique=True,
        postgresql_where=sa.text("organisation IS NOT NULL"),
    ),
    sa.Index(
        "uq_staff_email_operator",
        "email",
        unique=True,
        postgresql_where=sa.text("organisation IS NULL"),
    ),
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

# Every CSV export from a campaign's dashboard (exports.py): who, when, which, how many rows. The
# email is copied so the record outlives the account; ``rows`` stays NULL until the download
# finished (a download cut off half way leaves that to see).
staff_exports = sa.Table(
    "staff_exports",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "campaign",
        sa.String(100),
        sa.ForeignKey("campaigns.slug", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("staff_id", sa.BigInteger, sa.ForeignKey("staff.id", ondelete="SET NULL")),
    sa.Column("staff_email", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Index("ix_staff_exports_campaign_created_at", "campaign", "created_at"),
)
