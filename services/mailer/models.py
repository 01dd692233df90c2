"""Tables owned by the mailer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import metadata
from shared.erased import erased_supporters_table
from shared.states import LetterState, check

# One row per (signature, purpose): confirmation, reminder, letter, copy, unresolvable.
# shared.states.LetterState: created → sending → sent | failed. ``sends`` counts SMTP hand-overs; above 1 means a crash
# between the SMTP server's acceptance and our commit may have caused a duplicate.
# ``supporter_key`` (a keyed hash of the supporter's normalised email, shared.supporters) finds a
# supporter's rows for erasure. ``scrubbed_at``: the body, subject, the supporter's address and
# the key were removed (retention or erasure); the row stays as the record that it was sent.
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
    sa.Column("supporter_key", sa.String(64)),
    sa.Column("scrubbed_at", sa.DateTime(timezone=True)),
    # A ``sending`` claim is a lease: nobody else may send the email before ``lease_until``,
    # which its sender renews while it waits on the mail server (delivery.py, Leases).
    sa.Column("lease_owner", sa.String(120)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    # The connection was lost after the message went: the server may have it. Resent once at
    # most (after the lease ends, same Message-ID); shown as "may be duplicated".
    sa.Column("uncertain", sa.Boolean, nullable=False, server_default=sa.false()),
    # The campaign's version (``campaign_versions``) the letter was rendered from: a later edit
    # never changes what a sent letter said. NULL for emails not written from the letter.
    sa.Column("campaign_version", sa.Integer),
    # A hard bounce came back for it (state ``bounced``, the reason in ``error``): when.
    sa.Column("bounced_at", sa.DateTime(timezone=True)),
    # Kind to MPs' inboxes (scheduled.py, digests.py): the day (Europe/London) a letter is
    # counted against the daily cap or waits for (``queued``); for a digest, the day it covers.
    sa.Column("due_day", sa.Date),
    # A letter over the daily cap waits ``queued`` with its whole message, sent as it is on
    # its day. A digest campaign's letter waits with its row of the digest (name, address,
    # email, own words) and, once taken into a digest, that digest's ``signature_id``.
    sa.Column("held_message", sa.Text),
    sa.Column("digest_entry", JSONB),
    sa.Column("digest_id", sa.Uuid),
    sa.UniqueConstraint("signature_id", "purpose", name="uq_letters_signature_purpose"),
    sa.CheckConstraint(check("state", LetterState), name="state"),
    sa.Index("ix_letters_state", "state"),
    sa.Index("ix_letters_supporter_key", "supporter_key"),
    sa.Index(
        "ix_letters_unscrubbed", "created_at", postgresql_where=sa.text("scrubbed_at IS NULL")
    ),
    sa.Index(
        "ix_letters_due_day",
        "recipient",
        "due_day",
        postgresql_where=sa.text("due_day IS NOT NULL"),
    ),
    sa.Index(
        "ix_letters_digest_id", "digest_id", postgresql_where=sa.text("digest_id IS NOT NULL")
    ),
)

# Signatures that may need a confirmation reminder. The mailer does not own signatures: it learns
# of them from signature.received and of their confirmation from signature.confirmed (which also
# blanks the personal fields: a confirmed row only says "no reminder"). ``lease_until`` stops two
# sweepers (replicas) from sending the same reminder at once; ``reminded_at`` marks it done.
pending_confirmations = sa.Table(
    "pending_confirmations",
    metadata,
    sa.Column("signature_id", sa.Uuid, primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("supporter_key", sa.String(64)),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("first_name", sa.Text, nullable=False),
    sa.Column("last_name", sa.Text, nullable=False),
    sa.Column("language", sa.String(5), nullable=False, server_default="en"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("reminded_at", sa.DateTime(timezone=True)),
    sa.Index(
        "ix_pending_confirmations_due",
        "due_at",
        postgresql_where=sa.text("NOT confirmed AND reminded_at IS NULL"),
    ),
    sa.Index("ix_pending_confirmations_supporter_key", "supporter_key"),
)

# Supporters who asked to be erased (by keyed hash only): nothing more is sent for them, even
# for events already in flight when the request arrived (shared.erased).
erased_supporters = erased_supporters_table("erased_supporters")

# Each mailer process that has paused sending because the mail server refuses our set-up (530,
# a 5xx to MAIL FROM, TLS): shown by ``dearmp status`` until a send goes through again.
sending_pauses = sa.Table(
    "sending_pauses",
    metadata,
    sa.Column("owner", sa.String(120), primary_key=True),  # host:pid
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
)

# Every bounce ``dearmp serve bounces`` matched to an email (services/mailer/bounces/): hard (an
# RFC 3464 5.x.x report for the email's own recipient: the email is marked ``bounced``) or soft
# (4.x.x, or a failure only guessed from a non-standard message: recorded, nothing changes). ``reason``
# is the status and the server's diagnostic with any address in it removed; ``how``: ``dsn``
# (RFC 3464) or ``heuristic`` (flufl.bounce). Deleted after DEARMP_RETENTION_DAYS.
bounces = sa.Table(
    "bounces",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("letter_id", sa.BigInteger, nullable=False),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("purpose", sa.String(30), nullable=False),
    sa.Column("kind", sa.String(4), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("how", sa.String(10), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('hard', 'soft')", name="kind"),
    sa.Index("ix_bounces_received_at", "received_at"),
)

# Addresses that bounced for good, by keyed hash (shared.supporters.supporter_key of the address):
# the mailer's claim sends nothing to one while ``cleared_at`` is NULL. A target's (an MP's public
# office address, kept in ``address``): its letters wait, ``held``, until the MP data gives the
# member another address (``dearmp data refresh-mps``: ``dearmp status`` asks for it while the
# MP data still lists the address unchanged since) or an operator clears it (``dearmp bounces
# clear``). A supporter's (``address`` NULL): nothing more is sent to it; deleted on erasure.
bounced_addresses = sa.Table(
    "bounced_addresses",
    metadata,
    sa.Column("address_key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cleared_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("kind IN ('target', 'supporter')", name="kind"),
)

# "Did your MP reply?" (replies.py): one row per letter to a target, written before the letter
# goes (the question follows only a letter whose row in ``letters`` is ``sent``, DEARMP_REPLY_*
# after its ``sent_at``). ``asked_at``, ``reminded_at``: the question and its one reminder went
# (each a letters row: (signature, "reply_question"), (signature, "reply_reminder")).
# ``closed_at``: nothing more will go (reminded, answered, unsubscribed, or it could not be sent);
# the personal fields are blanked then. ``lease_until`` stops two sweepers sending at once.
reply_questions = sa.Table(
    "reply_questions",
    metadata,
    sa.Column("signature_id", sa.Uuid, primary_key=True),
    sa.Column("campaign", sa.String(100), nullable=False),
    sa.Column("supporter_key", sa.String(64)),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("first_name", sa.Text, nullable=False),
    sa.Column("language", sa.String(5), nullable=False, server_default="en"),
    sa.Column("target_name", sa.Text, nullable=False),
    sa.Column("target_kind", sa.String(10), nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("asked_at", sa.DateTime(timezone=True)),
    sa.Column("reminded_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Index(
        "ix_reply_questions_open", "created_at", postgresql_where=sa.text("closed_at IS NULL")
    ),
    sa.Index("ix_reply_questions_supporter_key", "supporter_key"),
)
