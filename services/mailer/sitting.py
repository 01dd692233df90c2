"""Who sits now: a letter to an MP goes to whoever holds the seat when it is sent, never to
someone who no longer does (issue 19).

The resolver names the member when the signature is confirmed; the letter usually goes seconds
later. But a letter can wait in the mailer (the mail server down for hours, a bounced address):
if meanwhile the MP data (``shared.reference.mps``, refreshed by ``dearmp data refresh-mps`` or
``import-mps``) has changed for that seat, the letter goes to the member it names now; if the
seat is now vacant, or Parliament is dissolved (``DEARMP_DISSOLUTION_AT``) and the data has not
been refreshed since, the letter waits (retried until someone sits). Only data refreshed after
the letter's member was found can overrule it: an older row says nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.broker.consumer import TransientFailure
from shared.messages import SignatureResolved, Target
from shared.reference import mps
from shared.ttl_cache import TtlCache

_SEAT = sa.select(mps.c.name, mps.c.party, mps.c.email, mps.c.member_id, mps.c.updated_at).where(
    mps.c.constituency_code == sa.bindparam("code")
)


class NobodySits(TransientFailure):
    """The seat is vacant, or Parliament dissolved: the letter waits and is tried again."""


class Seats:
    """Each seat's row, read at most every ``ttl`` seconds per process. Safe between threads."""

    def __init__(self, engine: Engine, dissolved_from: datetime | None, ttl: float = 5.0) -> None:
        self.engine, self.dissolved_from = engine, dissolved_from
        self._rows: TtlCache[str, Any] = TtlCache(ttl)

    def _row(self, code: str) -> Any:
        return self._rows.get(code, lambda: self._read(code))

    def _read(self, code: str) -> Any:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.execute(_SEAT, {"code": code}).first()

    def target_now(self, event: SignatureResolved, found_at: datetime) -> Target:
        """The member to write to now: the event's, unless MP data refreshed after ``found_at``
        (when the resolver found them) names another; ``NobodySits`` when nobody does."""
        target, seat = event.target, event.constituency
        if target.kind != "mp" or seat is None:
            return target
        row = self._row(seat.code)
        if row is None:
            return target  # no MP data here (a remote look-up found the member): nothing to say
        start = self.dissolved_from
        if start is not None and datetime.now(UTC) >= start and row.updated_at < start:
            raise NobodySits("Parliament is dissolved: the letter waits for the new member")
        if row.updated_at <= found_at:
            return target
        if row.member_id is None and row.name is None:
            raise NobodySits("the seat is vacant now: the letter waits for the new member")
        if not row.email or (row.name, row.email) == (target.name, target.email):
            return target
        return Target(name=row.name, email=row.email, party=row.party, kind="mp")
