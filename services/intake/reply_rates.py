"""Did your MP reply? response rates from the supporters' answers (``reply_answers``).

An MP (a target: the MP a letter went to, or a campaign's named target) has replied when at
least one of the supporters who wrote to them says so. The rate is over the MPs someone
answered about: "43% of MPs have replied to their constituents (3 of 7)". Read on request, for
one campaign: the staff dashboard (with each MP's answers and the pasted replies, private to
the campaign's organisation) and, when the campaign has ``show_reply_rate``, its public page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.intake.models import reply_answers as answers
from services.intake.models import signatures


@dataclass(frozen=True)
class MpReplies:
    target_name: str
    constituency_name: str | None
    yes: int
    not_yet: int
    no: int

    @property
    def answered(self) -> int:
        return self.yes + self.not_yet + self.no

    @property
    def replied(self) -> bool:
        return self.yes > 0


@dataclass(frozen=True)
class PastedReply:
    target_name: str
    constituency_name: str | None
    pasted_at: datetime
    text: str
    shared: bool  # the supporter agreed that the campaign may share it


@dataclass(frozen=True)
class ReplyRates:
    mps: list[MpReplies] = field(default_factory=list)

    @property
    def mps_answered(self) -> int:
        return len(self.mps)

    @property
    def mps_replied(self) -> int:
        return sum(mp.replied for mp in self.mps)

    @property
    def percent(self) -> int | None:
        """Of the MPs someone answered about, how many replied (rounded); None: no answers."""
        if not self.mps:
            return None
        return round(100 * self.mps_replied / self.mps_answered)

    def total(self, answer: str) -> int:
        return sum(getattr(mp, answer) for mp in self.mps)


def _answers_of(slug: str) -> sa.Select:  # type: ignore[type-arg]
    return (
        sa.select(answers, signatures.c.target_name, signatures.c.constituency_name)
        .join(signatures, signatures.c.id == answers.c.signature_id)
        .where(answers.c.campaign == slug, signatures.c.target_name.is_not(None))
    )


def reply_rates(conn: Connection, slug: str) -> ReplyRates:
    """Each MP's answers for the campaign, most replies first."""
    sub = _answers_of(slug).subquery()

    def n(value: str) -> sa.ColumnElement[int]:
        return sa.func.count().filter(sub.c.answer == value)

    rows = conn.execute(
        sa.select(
            sub.c.target_name,
            sa.func.min(sub.c.constituency_name).label("constituency_name"),
            n("yes").label("yes"),
            n("not_yet").label("not_yet"),
            n("no").label("no"),
        )
        .group_by(sub.c.target_name)
        .order_by(sa.text("yes DESC"), sub.c.target_name)
    )
    return ReplyRates([MpReplies(**row._asdict()) for row in rows])


def pasted_replies(conn: Connection, slug: str, limit: int = 50) -> list[PastedReply]:
    """The newest replies supporters pasted: for the campaign's own staff only."""
    sub = _answers_of(slug).where(answers.c.reply_text.is_not(None)).subquery()
    rows = conn.execute(sa.select(sub).order_by(sub.c.reply_pasted_at.desc()).limit(limit))
    return [
        PastedReply(
            row.target_name,
            row.constituency_name,
            row.reply_pasted_at,
            row.reply_text,
            row.share_reply,
        )
        for row in rows
    ]
