"""Finding the target for a postcode. Backends answer a ``Resolution`` or None ("don't know")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared import postcodes
from shared.campaigns import Campaign
from shared.messages import Constituency, Target
from shared.reasons import REASONS
from shared.reference import constituencies, mps
from shared.reference import postcodes as postcode_table


@dataclass(frozen=True)
class Resolution:
    status: Literal["resolved", "unresolvable", "retry"]
    postcode: str
    reason: str | None = None
    constituency: Constituency | None = None
    target: Target | None = None

    @property
    def message(self) -> str:
        return REASONS.get(self.reason or "", "")

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reason": self.reason,
            "postcode": self.postcode,
            "constituency": self.constituency.model_dump() if self.constituency else None,
            "target": self.target.model_dump(exclude={"kind"}) if self.target else None,
        }


class Backend(Protocol):
    def lookup(self, postcode: str) -> Resolution | None: ...


# Built once: composing this select per call costs more than running it.
LOCAL_LOOKUP = (
    sa.select(
        postcode_table.c.constituency_code,
        postcode_table.c.terminated,
        constituencies.c.name.label("constituency_name"),
        mps.c.constituency_code.label("mp_row"),
        mps.c.name,
        mps.c.party,
        mps.c.email,
        mps.c.member_id,
        mps.c.updated_at,
    )
    .select_from(
        postcode_table.outerjoin(
            constituencies, constituencies.c.code == postcode_table.c.constituency_code
        ).outerjoin(mps, mps.c.constituency_code == postcode_table.c.constituency_code)
    )
    .where(postcode_table.c.postcode == sa.bindparam("postcode"))
)


class LocalBackend:
    """The tables loaded by ``dearmp data import-*``. ``dissolved_from``: when Parliament is
    dissolved (``DEARMP_DISSOLUTION_AT``); from then a member counts only if their row was
    refreshed after it (the new Parliament's data), else the letter waits."""

    def __init__(self, engine: Engine, dissolved_from: datetime | None = None):
        self.engine = engine
        self.dissolved_from = dissolved_from
        self._sql = str(LOCAL_LOOKUP.compile(dialect=engine.dialect)) if engine else ""
        self._raw: Any = None

    def _query(self, postcode: str) -> Any:
        """One prepared statement on a connection this backend keeps (one backend per thread):
        several times faster than a pooled SQLAlchemy round trip for this hot point look-up."""
        import psycopg

        for attempt in (1, 2):
            try:
                if self._raw is None:
                    self._raw = self.engine.raw_connection()
                    # On psycopg's connection: set on the pool's proxy it did nothing, and the
                    # first look-up left a transaction open for good, holding its locks on
                    # postcodes, constituencies and mps (an import's table swap waited for it).
                    self._raw.dbapi_connection.autocommit = True
                cur = self._raw.cursor(row_factory=psycopg.rows.namedtuple_row)
                return cur.execute(self._sql, {"postcode": postcode}, prepare=True).fetchone()
            except psycopg.OperationalError:
                self.close()
                if attempt == 2:
                    raise

    def close(self) -> None:
        if self._raw is not None:
            try:
                self._raw.invalidate() if hasattr(self._raw, "invalidate") else self._raw.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._raw = None

    def _dissolved(self, refreshed: datetime) -> bool:
        start = self.dissolved_from
        return start is not None and datetime.now(UTC) >= start and refreshed < start

    def lookup(self, postcode: str) -> Resolution | None:
        row = self._query(postcode)
        if row is None:
            return None
        if row.terminated:
            return Resolution("unresolvable", postcode, reason="terminated_postcode")
        if row.constituency_name is None:  # pseudo codes for the Crown dependencies
            return Resolution("unresolvable", postcode, reason="no_westminster_mp")
        constituency = Constituency(code=row.constituency_code, name=row.constituency_name)
        if row.mp_row is None:
            return None  # no MP data loaded for this seat: let another backend find the member
        if self._dissolved(row.updated_at):
            # No MPs until the election; the refresh after it releases the letter (re-resolved
            # then: new boundaries, the new member).
            return Resolution("retry", postcode, reason="dissolved", constituency=constituency)
        if row.member_id is None and row.name is None:
            # The seat has no member: vacant until a by-election. Hold the letter.
            return Resolution("retry", postcode, reason="vacant_seat", constituency=constituency)
        if not row.email:  # the member's name stays: the supporter can post the letter
            member = Target(name=row.name, party=row.party, kind="mp") if row.name else None
            return Resolution(
                "unresolvable",
                postcode,
                reason="no_contact",
                constituency=constituency,
                target=member,
            )
        return Resolution(
            "resolved",
            postcode,
            constituency=constituency,
            target=Target(name=row.name, email=row.email, party=row.party, kind="mp"),
        )


class BackendUnavailable(Exception):
    """A remote service timed out, failed (5xx) or asked us to slow down (429)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(Exception):
    """Every backend that could answer is down; try again later (``retry_after`` seconds if known)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def resolve(postcode_raw: str, campaign: Campaign | None, backends: list[Backend]) -> Resolution:
    """Ask each backend in turn. Raises ``Unavailable`` when none answered and one was down."""
    postcode = postcodes.normalise(postcode_raw)
    if campaign is not None and campaign.target.kind == "fixed":
        return Resolution(
            "resolved",
            postcode,
            target=Target(
                name=campaign.target.name or "", email=campaign.target.email, kind="fixed"
            ),
        )
    if not postcodes.is_valid(postcode):
        return Resolution("unresolvable", postcode, reason="invalid_postcode")
    if postcodes.no_westminster_mp(postcode):
        return Resolution("unresolvable", postcode, reason="no_westminster_mp")
    down: list[BackendUnavailable] = []
    for backend in backends:
        try:
            answer = backend.lookup(postcode)
        except BackendUnavailable as exc:  # one backend down must not stop the others
            down.append(exc)
            continue
        if answer is not None:
            return answer
    if down:
        waits = [e.retry_after for e in down if e.retry_after is not None]
        raise Unavailable("; ".join(str(e) for e in down), max(waits) if waits else None)
    return Resolution("unresolvable", postcode, reason="unknown_postcode")
