"""``dearmp data refresh-mps``: bring MPs' names and emails up to date from the Members API."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from tqdm import tqdm

from services.resolver.importers import release_held
from services.resolver.remote import CachedHttp, MembersApi
from shared.reference import constituencies, mps


def refresh_mps(engine: Engine, members_api_url: str, *, quiet: bool = False) -> str:
    """Look up every constituency's current member; vacant seats are recorded as vacant.
    Nothing is written unless every look-up succeeded (all or nothing)."""
    api = MembersApi(CachedHttp(None), members_api_url)  # no cache: we want today's answer
    with engine.connect() as conn:
        seats = conn.execute(
            sa.select(constituencies.c.code, constituencies.c.name).order_by(constituencies.c.code)
        ).all()
    rows = []
    for seat in tqdm(seats, desc="constituencies", unit="seat", disable=quiet):
        try:
            member = api.current_mp(seat.name)
        except LookupError:
            continue  # the API does not know this name: leave what we have
        email = api.preferred_email(int(member["id"])) if member else None
        rows.append(
            {
                "constituency_code": seat.code,
                "member_id": int(member["id"]) if member else None,
                "name": (member.get("nameDisplayAs") if member else None),
                "full_title": (member.get("nameFullTitle") if member else None),
                "party": ((member.get("latestParty") or {}).get("name") if member else None),
                "email": email,
                "updated_at": datetime.now(UTC),
            }
        )
    if rows:
        stmt = insert(mps).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[mps.c.constituency_code],
            set_={
                c: stmt.excluded[c]
                for c in ("member_id", "name", "full_title", "party", "email", "updated_at")
            },
        )
        with engine.begin() as conn:
            conn.execute(stmt)
        release_held(engine)
    vacant = sum(1 for r in rows if r["member_id"] is None)
    no_email = sum(1 for r in rows if r["member_id"] is not None and not r["email"])
    return (
        f"refreshed {len(rows)} of {len(seats)} constituencies "
        f"({vacant} vacant, {no_email} without an email address)"
    )
