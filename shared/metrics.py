"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "dearmp_messages_total", "Messages consumed, by outcome", ["queue", "type", "outcome"]
)
HANDLER_SECONDS = Histogram("dearmp_handler_seconds", "Time spent in a handler", ["queue", "type"])
OUTBOX_PUBLISHED = Counter("dearmp_outbox_published_total", "Outbox events confirmed by the broker")
SIGNATURES = Counter("dearmp_signatures_total", "Signatures accepted by intake", ["campaign"])
SMTP_PAUSED = Gauge(
    "dearmp_smtp_paused",
    "1 while this process has paused sending because the mail server refuses our set-up",
)
EMAILS = Counter("dearmp_emails_total", "Emails handed to SMTP", ["purpose", "outcome"])
WRITE_BATCH = Histogram(
    "dearmp_intake_write_batch_size",
    "Statements intake committed together (group commit of signatures)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
