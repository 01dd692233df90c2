"""Finding the target for a postcode. Backends answer a ``Resolution`` or None ("don't know")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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


class LocalBackend:
    """The tables loaded by ``dearmp data import-*``."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def lookup(self, postcode: str) -> Resolution | None:
        row = self.conn.execute(
            sa.select(
                postcode_table.c.constituency_code,
                postcode_table.c.terminated,
                constituencies.c.name.label("constituency_name"),
                mps.c.name,
                mps.c.party,
                mps.c.email,
                mps.c.member_id,
            )
            .select_from(
                postcode_table.outerjoin(
                    constituencies, constituencies.c.code == postcode_table.c.constituency_code
                ).outerjoin(mps, mps.c.constituency_code == postcode_table.c.constituency_code)
            )
            .where(postcode_table.c.postcode == postcode)
        ).first()
        if row is None:
            return None
        if row.terminated:
            return Resolution("unresolvable", postcode, reason="terminated_postcode")
        if row.constituency_name is None:  # pseudo codes for the Crown dependencies
            return Resolution("unresolvable", postcode, reason="no_westminster_mp")
        constituency = Constituency(code=row.constituency_code, name=row.constituency_name)
        if row.member_id is None and row.name is None:
            # No member known: a vacant seat. Hold the letter until there is one.
            return Resolution("retry", postcode, reason="vacant_seat", constituency=constituency)
        if not row.email:
            return Resolution(
                "unresolvable", postcode, reason="no_contact", constituency=constituency
            )
        return Resolution(
            "resolved",
            postcode,
            constituency=constituency,
            target=Target(name=row.name, email=row.email, party=row.party, kind="mp"),
        )


def resolve(postcode_raw: str, campaign: Campaign | None, backends: list[Backend]) -> Resolution:
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
    for backend in backends:
        answer = backend.lookup(postcode)
        if answer is not None:
            return answer
    return Resolution("unresolvable", postcode, reason="unknown_postcode")
