"""Reference data any service may read: campaigns, constituencies, postcodes and MPs.

Written only by the ``dearmp campaigns load``, ``dearmp orgs`` and ``dearmp data import-*``
commands.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import metadata

# The organisation whose campaigns the migration to organisations (0013) found, and that a
# campaign file without ``organisation:`` belongs to.
DEFAULT_ORGANISATION = "dear-mp"

# Who runs campaigns (``dearmp orgs add``): their brand, their privacy notice, the name their
# emails go out under, and the wording of the optional opt-in to their own mailing list ("" for
# none). A staff account of an organisation sees only its campaigns.
organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("slug", sa.String(100), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("logo_url", sa.Text, nullable=False, server_default=""),
    sa.Column("colour", sa.String(7), nullable=False, server_default=""),  # "#rrggbb" or ""
    sa.Column("website", sa.Text, nullable=False, server_default=""),
    sa.Column("privacy_url", sa.Text, nullable=False, server_default=""),
    sa.Column("privacy_text", sa.Text, nullable=False, server_default=""),
    sa.Column("sender_name", sa.Text, nullable=False),  # "ECPAT UK via Dear MP"
    sa.Column("list_opt_in", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("slug", sa.String(100), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("definition", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "organisation",
        sa.String(100),
        sa.ForeignKey("organisations.slug", onupdate="CASCADE"),
        nullable=False,
        server_default=DEFAULT_ORGANISATION,
        index=True,
    ),
    # The number of the definition's current version (``campaign_versions`` keeps every one).
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
)

# Every saved version of each campaign's definition, so an organiser can see the exact letter
# each signature was sent with (the mailer records the number in ``letters.campaign_version``).
# ``saved_by``: the staff account's email, or "campaign file" for ``dearmp campaigns load``.
campaign_versions = sa.Table(
    "campaign_versions",
    metadata,
    sa.Column(
        "campaign",
        sa.String(100),
        sa.ForeignKey("campaigns.slug", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", JSONB, nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("saved_by", sa.Text, nullable=False, server_default=""),
)

constituencies = sa.Table(
    "constituencies",
    metadata,
    sa.Column("code", sa.String(9), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)

postcodes = sa.Table(
    "postcodes",
    metadata,
    sa.Column("postcode", sa.String(8), primary_key=True),
    sa.Column("constituency_code", sa.String(9)),
    sa.Column("terminated", sa.String(6)),  # YYYYMM, NULL while live
)

mps = sa.Table(
    "mps",
    metadata,
    sa.Column("constituency_code", sa.String(9), primary_key=True),
    sa.Column("member_id", sa.Integer),
    sa.Column("name", sa.Text),  # NULL name = vacant seat
    sa.Column("full_title", sa.Text),
    sa.Column("party", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Campaign news, shown on the campaign page as "Update #N"; published by staff.
campaign_updates = sa.Table(
    "campaign_updates",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # markdown
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("emailed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("campaign", "number", name="uq_campaign_updates_campaign_number"),
)

# Where an organisation wants its events POSTed (``shared/webhooks.py``: its owners add them at
# /admin/webhooks, operators with ``dearmp webhooks add``), with the secret that signs them; the
# updates service reads them to deliver (``services/updates/webhooks.py``).
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "organisation",
        sa.String(100),
        sa.ForeignKey("organisations.slug", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("url", sa.Text, nullable=False),
    # The HMAC key, kept as given (it must be to sign); shown to staff once, when made.
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("organisation", "url", name="uq_webhook_endpoints_organisation_url"),
)
