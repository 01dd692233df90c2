"""What the resolver lets others read: for subject access, the signatures it holds for a person
(waiting for a vacant seat to be filled). Other services read its tables only through here."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.resolver.models import held_signatures
from shared.supporters import normalise_email


def held_about(conn: Connection, email: str) -> dict[str, list[dict[str, object]]]:
    """Subject access: the held signatures whose supporter has this (normalised) address."""
    rows = conn.execute(
        sa.select(
            held_signatures.c.signature_id,
            held_signatures.c.envelope,
            held_signatures.c.reason,
            held_signatures.c.held_at,
        )
    ).all()
    held = []
    for row in rows:
        supporter = row.envelope.get("payload", {}).get("supporter", {})
        if normalise_email(str(supporter.get("email", ""))) == email:
            held.append(
                {
                    "signature_id": str(row.signature_id),
                    "reason": row.reason,
                    "held_at": row.held_at.isoformat(),
                    "supporter": supporter,
                }
            )
    return {"held_signatures": held}
