"""What intake lets others read (``dearmp status``): signatures by status, per campaign. Other
services read intake's tables only through these functions.

"Confirmed" means what the public count means: every signature confirmed, whatever became of its
letter since (``SignatureStatus.counted()``); pending and erased-before-confirming ones are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.models import signatures
from shared.db import plain
from shared.states import SignatureStatus


@dataclass
class SignatureCounts:
    """One campaign's signatures: how many are in each status (every status named)."""

    by_status: dict[str, int] = field(
        default_factory=lambda: {status.value: 0 for status in SignatureStatus}
    )

    @property
    def confirmed(self) -> int:
        """Signatures that count towards the goal (as on the public page)."""
        return sum(self.by_status[s] for s in SignatureStatus.counted())

    @property
    def pending(self) -> int:
        return self.by_status[SignatureStatus.PENDING]

    def as_json(self) -> dict[str, object]:
        """``confirmed`` (as counted publicly), ``pending``, the letters ``sent`` and ``failed``,
        and every status's count."""
        return {
            "confirmed": self.confirmed,
            "pending": self.pending,
            "sent": self.by_status[SignatureStatus.SENT],
            "failed": self.by_status[SignatureStatus.FAILED],
            "by_status": dict(self.by_status),
        }


def signature_counts(conn: Connection, campaign: str | None = None) -> dict[str, SignatureCounts]:
    """{campaign: its counts}, for every campaign that has signatures (or just ``campaign``)."""
    query = sa.select(
        signatures.c.campaign, signatures.c.status, sa.func.count().label("n")
    ).group_by(signatures.c.campaign, signatures.c.status)
    if campaign is not None:
        query = query.where(signatures.c.campaign == campaign)
    out: dict[str, SignatureCounts] = {}
    for row in conn.execute(query):
        out.setdefault(row.campaign, SignatureCounts()).by_status[row.status] = row.n
    return out


def held_about(conn: Connection, email: str) -> dict[str, list[dict[str, object]]]:
    """Subject access: every signature and help request of this (normalised) address (with the
    answers staff sent to it), and their answers to "Has your MP replied?" with any reply they
    pasted."""
    from services.intake.models import help_replies, help_requests, reply_answers

    signed = conn.execute(
        sa.select(signatures)
        .where(signatures.c.email_normalised == email)
        .order_by(signatures.c.created_at)
    ).mappings()
    asked = conn.execute(
        sa.select(help_requests)
        .where(sa.func.lower(help_requests.c.email) == email)
        .order_by(help_requests.c.created_at)
    ).mappings()
    answers_sent = conn.execute(
        sa.select(
            help_requests.c.campaign,
            help_replies.c.body,
            help_replies.c.staff_email,
            help_replies.c.created_at,
        )
        .join(help_requests, help_requests.c.id == help_replies.c.request_id)
        .where(sa.func.lower(help_requests.c.email) == email)
        .order_by(help_replies.c.created_at)
    ).mappings()
    answered = conn.execute(
        sa.select(reply_answers)
        .join(signatures, signatures.c.id == reply_answers.c.signature_id)
        .where(signatures.c.email_normalised == email)
        .order_by(reply_answers.c.answered_at)
    ).mappings()
    return {
        "signatures": [plain(r) for r in signed],
        "help_requests": [plain(r) for r in asked],
        "help_replies": [plain(r) for r in answers_sent],
        "reply_answers": [plain({**r, "signature_id": str(r["signature_id"])}) for r in answered],
    }
