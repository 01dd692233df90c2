"""Tables owned by intake."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import metadata
from shared.states import SignatureStatus, check

signatures = sa.Table(
    "signatures",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("first_name", sa.Text, nullable=False),
    sa.Column("last_name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_normalised", sa.Text, nullable=False),
    # shared.supporters.supporter_key(secret, email): an erasure request names the person by it.
    sa.Column("supporter_key", sa.String(64), index=True),
    sa.Column("postcode", sa.String(10), nullable=False),
    sa.Column("address_lines", JSONB, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    # The supporter's own wording of an editable letter; "" = the campaign's words.
    sa.Column("letter", sa.Text, nullable=False, server_default=""),
    sa.Column("opt_in", sa.Boolean, nullable=False, server_default=sa.false()),
    # The separate consent to the campaign's organisation's own mailing list: the words the
    # supporter ticked and when (both NULL: not offered, or not ticked).
    sa.Column("org_opt_in_wording", sa.Text),
    sa.Column("org_opt_in_at", sa.DateTime(timezone=True)),
    # The tags on the campaign link the supporter signed from (sources.py; NULL: none).
    sa.Column("source", sa.String(60)),
    sa.Column("utm_source", sa.String(60)),
    sa.Column("utm_medium", sa.String(60)),
    sa.Column("utm_campaign", sa.String(60)),
    # The language the supporter signed in: their emails are in it (shared.i18n).
    sa.Column("language", sa.String(5), nullable=False, server_default="en"),
    # shared.states.SignatureStatus: pending → confirmed → resolved | unresolvable | held → …
    sa.Column("status", sa.String(20), nullable=False, server_default=SignatureStatus.PENDING),
    sa.Column("constituency_code", sa.String(9)),
    sa.Column("constituency_name", sa.Text),
    sa.Column("target_name", sa.Text),
    sa.Column("unresolvable_reason", sa.String(40)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),  # when the letter reached the target
    sa.UniqueConstraint("campaign", "email_normalised", name="uq_signatures_campaign_email"),
    sa.Index("ix_signatures_campaign_status", "campaign", "status"),
    sa.CheckConstraint(check("status", SignatureStatus), name="status"),
)

# "Can't sign? Tell us": requests kept for staff to answer.
help_requests = sa.Table(
    "help_requests",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("email", sa.Text, nullable=False),
    # shared.supporters.supporter_key(secret, email): an erasure request names the person by it.
    sa.Column("supporter_key", sa.String(64), index=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("handled_at", sa.DateTime(timezone=True)),
    # Names the request in its events and emails (helprequests.py); the page's language, in
    # which the acknowledgement and any reply's footer are written.
    sa.Column(
        "public_id",
        sa.Uuid,
        nullable=False,
        unique=True,
        server_default=sa.text("gen_random_uuid()"),
    ),
    sa.Column("language", sa.String(5), nullable=False, server_default="en"),
)

# Staff answers to a help request, each emailed once (help.replied); they go with the request.
help_replies = sa.Table(
    "help_replies",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "request_id",
        sa.BigInteger,
        sa.ForeignKey("help_requests.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("staff_email", sa.Text, nullable=False),  # who answered
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Fixed-window counters for the rate limits (ratelimit.py); keys are HMACs, no personal data.
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    # Counters need no crash safety: UNLOGGED skips the WAL, so a hit costs no disk flush.
    prefixes=["UNLOGGED"],
)

# "Did your MP reply?" (replies.py): the supporter's answer to the question the mailer sent
# after their letter (one per signature; a later answer replaces it), and the reply they may
# paste. ``reply_text`` is private to the campaign's organisation unless ``share_reply`` (the
# supporter ticked that they agree to share it); deleted DEARMP_REPLY_TEXT_DAYS after
# ``reply_pasted_at``, and on erasure (the answer stays: it names nobody).
reply_answers = sa.Table(
    "reply_answers",
    metadata,
    sa.Column("signature_id", sa.Uuid, primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("answer", sa.String(10), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reply_text", sa.Text),
    sa.Column("share_reply", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reply_pasted_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("answer IN ('yes', 'not_yet', 'no')", name="answer"),
    sa.Index("ix_reply_answers_campaign", "campaign"),
)
