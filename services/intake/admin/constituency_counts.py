"""Confirmed signatures per constituency, with the MP: one query for the dashboard's table (and
its hex map) and the constituency CSV, so the two always agree.

The MP is the one the constituency's letters went to: ``signatures.target_name``, written from
``signature.resolved`` whichever backend found them (the reference ``mps`` table, or the
resolver's remote look-up, whose MPs the reference table may not hold). When a seat changed
hands, the latest confirmed signature's MP. Only while no letter has a target yet (the seat is
vacant, or still being resolved) does the reference data name the MP. The party comes from the
reference data when it names that same MP; signatures do not record a party.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from services.intake.models import signatures
from shared.reference import constituencies, mps


def seats_query(slug: str) -> sa.Select[Any]:
    """Columns ``code``, ``name``, ``mp`` ("" when none is known), ``party`` ("" when not known),
    ``n`` (confirmed signatures) and ``listed`` (the MP data has the seat); one row per
    constituency with a confirmed signature, in no order."""
    s = signatures.c
    written_to = sa.type_coerce(
        sa.func.array_agg(aggregate_order_by(s.target_name, s.confirmed_at.desc())).filter(
            s.target_name.is_not(None)
        ),
        ARRAY(sa.Text),
    )[1]
    listed_mp = sa.func.max(mps.c.name)
    mp = sa.func.coalesce(written_to, listed_mp, "")
    party = sa.case(
        (sa.func.coalesce(written_to, listed_mp) == listed_mp, sa.func.max(mps.c.party)),
        else_=None,
    )
    return (
        sa.select(
            s.constituency_code.label("code"),
            sa.func.coalesce(
                sa.func.max(constituencies.c.name),
                sa.func.max(s.constituency_name),
                s.constituency_code,
            ).label("name"),
            mp.label("mp"),
            sa.func.coalesce(party, "").label("party"),
            sa.func.count().label("n"),
            (sa.func.count(mps.c.constituency_code) > 0).label("listed"),
        )
        .select_from(
            signatures.outerjoin(
                constituencies, constituencies.c.code == s.constituency_code
            ).outerjoin(mps, mps.c.constituency_code == s.constituency_code)
        )
        .where(s.campaign == slug, s.confirmed_at.is_not(None), s.constituency_code.is_not(None))
        .group_by(s.constituency_code)
    )
