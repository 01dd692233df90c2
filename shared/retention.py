"""How long each piece of personal data is kept: one rule for every column that can hold it.

``PERSONAL`` names, for each table, the columns that hold a supporter's (or a staff member's)
personal data and the rule that removes it: the ``Settings`` field that sets how long it is kept
(``None``: kept until the person is erased, or for as long as the row is needed, as the text
says). ``NOT_PERSONAL`` lists every other column. ``tests/unit/test_retention.py`` checks that
every column of every table is in one or the other, so a new column cannot hold personal data
without a rule, and that ``docs/privacy.md`` shows every rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    what: str  # how it goes, in a few words
    setting: str | None = None  # the Settings field that sets how long (days unless it says)


_SIGNATURE = Rule(
    "pending: deleted after the setting; all: replaced on erasure", "pending_signature_days"
)
_LETTER = Rule(
    "scrubbed after the setting, or on erasure (the row stays as a record)", "retention_days"
)
_PENDING = Rule(
    "blanked on confirming; deleted once settled and past the setting, or on erasure",
    "retention_days",
)
_SUBSCRIBER = Rule("deleted on erasure (leaving keeps the row: 'come back' must work)")
_EVENT = Rule(
    "sent events deleted after the setting; the person's, on erasure", "outbox_retention_days"
)

PERSONAL: dict[str, dict[str, Rule]] = {
    "signatures": {
        c: _SIGNATURE
        for c in (
            "first_name",
            "last_name",
            "email",
            "email_normalised",
            "postcode",
            "address_lines",
            "comment",
            "letter",
            # The separate consent to the organisation's own list, the record that it was given.
            "org_opt_in_wording",
            "org_opt_in_at",
            # Where they signed from: a campaign link's tags (services/intake/sources.py). Plain
            # short tags, but a link may be personal ("?source=jo-smith"): erased with the rest.
            "source",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        )
    },
    # The consent to the organisation's own list: kept with the signature as the record of it.
    "help_requests": {
        c: Rule("deleted after the setting, or on erasure", "help_request_days")
        for c in ("name", "email", "message")
    },
    # A staff member's answer to a help request (and who wrote it): it goes with the request.
    "help_replies": {
        c: Rule(
            "deleted with its help request (after the setting, or on erasure)", "help_request_days"
        )
        for c in ("body", "staff_email")
    },
    "letters": {c: _LETTER for c in ("recipient", "subject", "body", "error")}
    | {
        # A letter waiting for its day (the daily cap) or its digest: kept while it waits.
        c: Rule(
            "kept while the letter waits; after it goes, as the body; erasure deletes the row",
            "retention_days",
        )
        for c in ("held_message", "digest_entry")
    },
    # A bounce's status and diagnostic (services/mailer/bounces/), any address in it removed.
    "bounces": {
        "reason": Rule(
            "addresses removed when written; rows deleted after the setting, or on erasure",
            "retention_days",
        )
    },
    # Why an address was flagged (addresses removed); a supporter's row goes on erasure.
    "bounced_addresses": {
        "reason": Rule("addresses removed when written; a supporter's row deleted on erasure")
    },
    "pending_confirmations": {c: _PENDING for c in ("email", "first_name", "last_name")},
    # "Did your MP reply?": whom to ask (services/mailer/replies.py), until nothing more will go.
    "reply_questions": {
        c: Rule(
            "blanked once the question and its reminder are done; deleted past the setting "
            "after that, or on erasure",
            "retention_days",
        )
        for c in ("email", "first_name")
    },
    # An MP's reply a supporter pasted (services/intake/replies.py), and whether they agreed
    # that it may be shared: private to the campaign's organisation otherwise.
    "reply_answers": {
        c: Rule("deleted after the setting (from pasting), or on erasure", "reply_text_days")
        for c in ("reply_text", "share_reply", "reply_pasted_at")
    },
    "subscribers": {c: _SUBSCRIBER for c in ("email", "email_normalised", "first_name")},
    "held_signatures": {
        "envelope": Rule("deleted when the seat is filled and the letter goes, or on erasure")
    },
    "outbox": {"body": _EVENT, "last_error": _EVENT},
    "staff": {"email": Rule("staff accounts: removed by an operator when someone leaves")},
    # Who exported a campaign's data (the account's email as it was then).
    "staff_exports": {
        "staff_email": Rule("kept with the campaign as the record of who exported its data")
    },
    # Who saved each version of a campaign: a staff account's email, kept with the history.
    "campaign_versions": {
        "saved_by": Rule("kept with the campaign's history; deleted with the campaign")
    },
    "update_deliveries": {"error": Rule("addresses masked when written; kept with the job")},
    # The JSON POSTed to an organisation's webhook (a supporter's name, email and postcode).
    "webhook_deliveries": {
        "body": Rule(
            "delivered or failed: removed after the setting (hours); pending and the rest: "
            "deleted on erasure, rows after webhook_retention_days",
            "webhook_body_hours",
        )
    },
}

NOT_PERSONAL: dict[str, set[str]] = {
    "campaign_updates": {"id", "campaign", "number", "title", "body", "published_at", "emailed"},
    "campaigns": {"slug", "title", "definition", "updated_at", "organisation", "version"},
    "campaign_versions": {"campaign", "version", "definition", "saved_at"},
    "constituencies": {"code", "name"},
    # Keyed hashes only: they name nobody without the secret, and must outlive the person's data.
    "erased_supporters": {"supporter_key", "erased_at"},
    "resolver_erased_supporters": {"supporter_key", "erased_at"},
    "updates_erased_supporters": {"supporter_key", "erased_at"},
    "fanout_jobs": {
        "id",
        "campaign",
        "update_number",
        "status",
        "cursor",
        "finished_cursor",
        "upto",
        "total",
        "recorded",
        "sent",
        "skipped",
        "failed",
        "possible_duplicates",
        "pauses",
        "retry_at",
        "last_error",
        "created_at",
        "updated_at",
        "finished_at",
    },
    "held_signatures": {
        "signature_id",
        "reason",
        "constituency_code",
        "attempts",
        "held_at",
        "next_attempt_at",
    },
    "help_requests": {
        "id",
        "campaign",
        "supporter_key",
        "created_at",
        "handled_at",
        "public_id",
        "language",
    },
    "help_replies": {"id", "request_id", "created_at"},
    "inbox": {"consumer", "event_id", "processed_at"},  # pruned: inbox_retention_days
    "letters": {
        "id",
        "signature_id",
        "purpose",
        "campaign",
        "state",
        "message_id",
        "sends",
        "created_at",
        "sent_at",
        "supporter_key",
        "scrubbed_at",
        "lease_owner",
        "lease_until",
        "uncertain",
        "campaign_version",
        "bounced_at",
        "due_day",
        "digest_id",
    },
    "bounces": {
        "id",
        "letter_id",
        "campaign",
        "purpose",
        "kind",
        "status",
        "how",
        "received_at",
    },
    # A keyed hash of the address, and the address only for a target (an MP's or a fixed
    # target's public office address, as in ``mps``): a supporter's is never stored.
    "bounced_addresses": {"address_key", "kind", "address", "campaign", "flagged_at", "cleared_at"},
    # Public office holders' published work details, not supporters' data.
    "mps": {"constituency_code", "member_id", "name", "full_title", "party", "email", "updated_at"},
    # Organisations' public details (their brand, notice and the wording of their opt-in).
    "organisations": {
        "slug",
        "name",
        "logo_url",
        "colour",
        "website",
        "privacy_url",
        "privacy_text",
        "sender_name",
        "list_opt_in",
        "created_at",
    },
    "outbox": {
        "id",
        "event_id",
        "routing_key",
        "correlation_id",
        "created_at",
        "available_at",
        "sent_at",
        "attempts",
    },
    "pending_confirmations": {
        "signature_id",
        "campaign",
        "supporter_key",
        "language",
        "received_at",
        "due_at",
        "confirmed",
        "lease_until",
        "reminded_at",
    },
    "postcodes": {"postcode", "constituency_code", "terminated"},  # public reference data
    # The answer (yes, not yet, no) and when: about the MP, naming nobody once erased.
    "reply_answers": {"signature_id", "campaign", "answer", "answered_at"},
    "reply_questions": {
        "signature_id",
        "campaign",
        "supporter_key",
        "language",
        "target_name",  # the MP (or named target): public
        "target_kind",
        "signed_at",
        "created_at",
        "asked_at",
        "reminded_at",
        "closed_at",
        "lease_until",
    },
    "rate_limits": {"key", "window_start", "hits"},  # HMAC keys, swept after their window
    "resolutions": {
        "signature_id",
        "campaign",
        "status",
        "reason",
        "constituency_code",
        "target_name",
        "resolved_at",
    },
    # Cached answers of the public postcode and Members APIs (no supporter named).
    "resolver_cache": {"url", "status", "body", "expires_at"},
    "sending_pauses": {"owner", "reason", "since", "until"},
    "signatures": {
        "id",
        "campaign",
        "supporter_key",
        "opt_in",
        "language",
        "status",
        "constituency_code",
        "constituency_name",
        "target_name",
        "unresolvable_reason",
        "created_at",
        "confirmed_at",
        "sent_at",
    },
    "staff": {
        "id",
        "password_hash",
        "failed_attempts",
        "locked_until",
        "created_at",
        "role",
        "organisation",
    },
    "staff_sessions": {"token_hash", "staff_id", "created_at", "expires_at"},
    "staff_exports": {"id", "campaign", "kind", "staff_id", "rows", "created_at", "finished_at"},
    "subscribers": {
        "id",
        "campaign",
        "signature_id",
        "earlier_signature_ids",
        "signed_at",
        "supporter_key",
        "language",
        "subscribed",
        "created_at",
        "unsubscribed_at",
        "preference_changed_at",
    },
    "update_deliveries": {"id", "job_id", "subscriber_id", "state", "sends", "sent_at"},
    # An organisation's endpoints: its address and the key that signs its deliveries.
    "webhook_endpoints": {"id", "organisation", "url", "secret", "created_at"},
    # Ids, states and times (supporter_key: a keyed hash, for erasure); finished rows are deleted
    # after webhook_retention_days, with their failure log.
    "webhook_deliveries": {
        "id",
        "endpoint_id",
        "event_id",
        "event_type",
        "campaign",
        "signature_id",
        "supporter_key",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "finished_at",
    },
    # The failure log: the status or a few words we wrote ("could not connect"), never the
    # receiver's answer.
    "webhook_failures": {"id", "delivery_id", "attempt", "at", "status_code", "error", "gave_up"},
}
