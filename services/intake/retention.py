"""Keeping intake's personal data no longer than needed (a periodic task of ``dearmp serve
intake``'s consumer process; the rules for every table are in ``shared/retention.py``).

- A signature never confirmed is deleted ``DEARMP_PENDING_SIGNATURE_DAYS`` after it was made: its
  link lasted 7 days and the reminder came after one; nobody can confirm it any more.
- "Can't sign? Tell us" messages are deleted ``DEARMP_HELP_REQUEST_DAYS`` after they arrived.
- An MP's reply a supporter pasted ("Did your MP reply?") is deleted ``DEARMP_REPLY_TEXT_DAYS``
  after it was pasted; their answer stays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from services.intake.models import help_requests, reply_answers, signatures
from shared.config import Settings
from shared.logging import get_logger
from shared.states import SignatureStatus

log = get_logger(__name__)


def sweep(engine: Engine, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Delete what has outlived its purpose; returns counts by table."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        pending = conn.execute(
            signatures.delete().where(
                signatures.c.status == SignatureStatus.PENDING,
                signatures.c.created_at < now - timedelta(days=settings.pending_signature_days),
            )
        ).rowcount
        helped = conn.execute(
            help_requests.delete().where(
                help_requests.c.created_at < now - timedelta(days=settings.help_request_days)
            )
        ).rowcount
    with engine.begin() as conn:  # pasted replies: logged, not in the counts returned
        replies = conn.execute(
            reply_answers.update()
            .where(reply_answers.c.reply_pasted_at < now - timedelta(days=settings.reply_text_days))
            .values(reply_text=None, share_reply=False, reply_pasted_at=None)
        ).rowcount
    removed = {"pending_signatures": pending, "help_requests": helped}
    if any(removed.values()) or replies:
        log.info("retention: personal data deleted", reply_texts=replies, **removed)
    return removed
