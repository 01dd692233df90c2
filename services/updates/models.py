"""Tables owned by the updates service: its own subscriber list, built only from events, the
fan-out of each emailed update (one job per update, one delivery per subscriber), and the
organisations' webhook deliveries with their failure log (the endpoints are
``shared.reference.webhook_endpoints``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shared.db import metadata
from shared.erased import erased_supporters_table
from shared.reference import webhook_endpoints

# One row per person and campaign (their normalised address, as intake keeps one signature per
# campaign and address): a supporter who signs again (a replaced signature: a corrected postcode)
# keeps one row, which follows their newest signature, and gets each update once.
subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    # Their newest signature (update emails and their unsubscribe links name it).
    sa.Column("signature_id", sa.Uuid, nullable=False, unique=True),
    # The signatures it replaced: the unsubscribe links in emails sent before still name them.
    sa.Column(
        "earlier_signature_ids",
        postgresql.ARRAY(sa.Uuid),
        nullable=False,
        server_default=sa.text("'{}'::uuid[]"),
    ),
    # When the newest signature was made: an older signature's late confirmation changes nothing.
    sa.Column("signed_at", sa.DateTime(timezone=True)),
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
    sa.UniqueConstraint("campaign", "email_normalised", name="uq_subscribers_campaign_email"),
    sa.Index("ix_subscribers_campaign_id", "campaign", "id"),
    sa.Index("ix_subscribers_email_normalised", "email_normalised"),
    sa.Index(
        "ix_subscribers_earlier_signature_ids", "earlier_signature_ids", postgresql_using="gin"
    ),
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
