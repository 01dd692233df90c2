"""Tables owned by the updates service: its own subscriber list, built only from events, and the
fan-out of each emailed update (one job per update, one delivery per subscriber)."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import metadata
from shared.erased import erased_supporters_table

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("signature_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("email", sa.Text, nullable=False),
    # shared.supporters.normalise_email(email): "leave every campaign" finds the person's rows.
    sa.Column("email_normalised", sa.Text, nullable=False),
    # shared.supporters.supporter_key(secret, email): an erasure request names the person by it.
    sa.Column("supporter_key", sa.String(64), index=True),
    sa.Column("first_name", sa.Text, nullable=False),
    sa.Column("language", sa.String(5), nullable=False, server_default="en"),  # of the footer
    sa.Column("subscribed", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # When they last left (kept when they come back, for the record) and when their choice last
    # changed: a subscription.changed event older than that is not applied (last writer wins).
    sa.Column("unsubscribed_at", sa.DateTime(timezone=True)),
    sa.Column("preference_changed_at", sa.DateTime(timezone=True)),
    sa.Index("ix_subscribers_campaign_id", "campaign", "id"),
    sa.Index("ix_subscribers_email_normalised", "email_normalised"),
)

# Supporters who asked to be erased (by keyed hash only): a signature.confirmed of theirs that
# arrives late adds no subscriber (shared.erased).
erased_supporters = erased_supporters_table("updates_erased_supporters")

# One per emailed update. Streams the campaign's subscribers with id in (cursor, upto] (upto: the
# newest subscriber when the update was published), in keyset pages. Counts are written once per
# batch, by the one worker holding the job's advisory lock.
fanout_jobs = sa.Table(
    "fanout_jobs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("update_number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | waiting | done
    sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
    # Every delivery for a subscriber id up to this one is finished (sent, failed or skipped).
    sa.Column("finished_cursor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("upto", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),  # subscribed when published (an estimate)
    sa.Column("recorded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    # Deliveries found 'sending' when a worker took the job over: the only possible duplicates.
    sa.Column("possible_duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pauses", sa.Integer, nullable=False, server_default="0"),  # in a row
    sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("campaign", "update_number", name="uq_fanout_jobs_campaign_update"),
    sa.Index("ix_fanout_jobs_runnable", "retry_at", postgresql_where=sa.text("status <> 'done'")),
)

# One per (job, subscriber): pending → sending → sent | failed, or skipped (left before it went).
# Read in (job_id, subscriber_id) order through the unique index. No index includes ``state``, so
# its two updates per copy can be HOT updates (the migration leaves room: fillfactor 70).
deliveries = sa.Table(
    "update_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "job_id", sa.BigInteger, sa.ForeignKey("fanout_jobs.id", ondelete="CASCADE"), nullable=False
    ),
    # Erasing a subscriber erases their deliveries too.
    sa.Column(
        "subscriber_id",
        sa.BigInteger,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("sends", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("job_id", "subscriber_id", name="uq_update_deliveries_job_subscriber"),
    sa.Index("ix_update_deliveries_subscriber_id", "subscriber_id"),
)
