"""What a bounce changes, in one transaction.

- Every bounce matched to an email is kept in ``bounces`` (hard or soft, the reason).
- Only an RFC 3464 report of a permanent failure (5.x.x) for the very address the email was sent
  to is hard (``verdict``). Anything else is kept as ``soft`` and changes nothing else: a 4.x.x
  (the server is still trying, or will be retried), a report for another address (a forward, the
  sandbox address, or a report about someone else), and any non-standard bounce read by
  flufl.bounce's heuristics, permanent or not. Heuristics read prose, and an MP's office that
  auto-replies inline quotes a supporter's words, so a heuristic match is a signal for operators
  (``dearmp bounces list``), never a hold on an MP's address for every organisation: nobody who
  can write a comment, or sign N times, can reach a hold that way. Current mail servers
  (Exchange and Microsoft 365, Google, Postfix, Exim) send RFC 3464 reports.
- A hard bounce of a sent email marks it ``bounced`` (the reason in ``error``) and flags
  its recipient's address in ``bounced_addresses``, so the claim (``delivery.py``) sends nothing
  more to it: to a target (an MP's office), further letters wait ``held`` until the MP data gives
  the member another address or an operator clears the flag; to a supporter, nothing more goes
  (reminders, copies, notices). The letter to the target announces ``letter.failed`` (intake
  shows the signature's letter as failed).

Idempotent: a second copy of the same bounce adds a row to ``bounces`` but changes no state (the
email is already ``bounced``, the address already flagged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from services.mailer.bounces.parse import Bounce
from services.mailer.delivery import TARGET_PURPOSES
from services.mailer.models import bounced_addresses, bounces, letters
from shared import outbox
from shared.logging import get_logger
from shared.messages import LetterFailed
from shared.states import LetterState
from shared.supporters import normalise_email, supporter_key

log = get_logger(__name__)

Recorded = Literal["bounced", "soft", "unknown", "not_sent"]


def verdict(failures: Sequence[Bounce], sent_to: str | None) -> Bounce:
    """The failure an email's record keeps: ``hard`` only for an RFC 3464 report of a permanent
    failure naming ``sent_to`` (the address the email went to); anything else ``soft``."""
    ours = [b for b in failures if b.how == "dsn" and b.names(sent_to)]
    if ours:
        return min(ours, key=lambda b: b.kind != "hard")
    first = min(failures, key=lambda b: b.kind != "hard")
    if first.how == "heuristic":
        note = "non-standard bounce: a signal only"
        return replace(first, kind="soft", reason=first.reason.replace("non-standard bounce", note))
    return replace(
        first, kind="soft", reason=f"{first.reason} (for another address: a signal only)"
    )


def record_bounce(
    engine: Engine, secret: str, letter_id: int, failures: Sequence[Bounce]
) -> Recorded:
    """Keep what ``failures`` (one message's, at least one) say about email ``letter_id``."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(
                letters.c.id,
                letters.c.signature_id,
                letters.c.campaign,
                letters.c.purpose,
                letters.c.recipient,
                letters.c.state,
            )
            .where(letters.c.id == letter_id)
            .with_for_update()
        ).first()
        if row is None:
            return "unknown"
        bounce = verdict(failures, row.recipient)
        conn.execute(
            bounces.insert().values(
                letter_id=row.id,
                campaign=row.campaign,
                purpose=row.purpose,
                kind=bounce.kind,
                status=bounce.status,
                reason=bounce.reason,
                how=bounce.how,
                received_at=now,
            )
        )
        if bounce.kind == "soft":
            return "soft"
        if row.state not in (LetterState.SENT, LetterState.BOUNCED) or not row.recipient:
            return "not_sent"  # never taken by our server (or scrubbed): nothing to flag
        if row.state == LetterState.SENT:
            conn.execute(
                letters.update()
                .where(letters.c.id == row.id)
                .values(
                    state=LetterState.BOUNCED, bounced_at=now, error=f"bounced: {bounce.reason}"
                )
            )
            if row.purpose == "letter":
                failed = LetterFailed(
                    signature_id=row.signature_id,
                    purpose=row.purpose,
                    reason=f"bounced: {bounce.reason}",
                )
                outbox.add(conn, failed, correlation_id=str(row.signature_id))
        target = row.purpose in TARGET_PURPOSES
        flag = insert(bounced_addresses).values(
            address_key=supporter_key(secret, row.recipient),
            kind="target" if target else "supporter",
            # An MP's (or a fixed target's) public office address; never a supporter's.
            address=normalise_email(row.recipient) if target else None,
            campaign=row.campaign,
            reason=bounce.reason,
            flagged_at=now,
            cleared_at=None,
        )
        conn.execute(
            flag.on_conflict_do_update(
                index_elements=[bounced_addresses.c.address_key],
                set_={"reason": flag.excluded.reason, "flagged_at": now, "cleared_at": None},
                where=bounced_addresses.c.cleared_at.is_not(None),
            )
        )
    return "bounced"


def clear_address(engine: Engine, secret: str, address: str) -> bool:
    """An operator says the address works again (or was fixed): its held letters go on their
    next retry. False when it was not flagged."""
    with engine.begin() as conn:
        cleared = conn.execute(
            bounced_addresses.update()
            .where(
                bounced_addresses.c.address_key == supporter_key(secret, address),
                bounced_addresses.c.cleared_at.is_(None),
            )
            .values(cleared_at=datetime.now(UTC))
        ).rowcount
    return bool(cleared)
