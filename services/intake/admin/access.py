"""Subject access: everything Dear MP holds about one person, gathered from each service's
``reports.py`` (the staff page ``/admin/supporters`` and ``dearmp supporters export EMAIL``);
an organisation's staff get only what its campaigns hold.
The address is normalised as every service stores it; the mailer and the webhook deliveries
are found by the keyed hash of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from services.intake import reports as intake
from services.mailer import reports as mailer
from services.resolver import reports as resolver
from services.updates import reports as updates
from shared.organisations import campaigns_of
from shared.supporters import normalise_email, supporter_key


def held_about(
    engine: Engine, email: str, secret: str, *, organisation: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every section, or, for an organisation's staff, only the rows of its campaigns (a held
    signature, which names no campaign, by its signature)."""
    address = normalise_email(email)
    with engine.connect() as conn:
        record = {
            **intake.held_about(conn, address),
            **mailer.held_about(conn, supporter_key(secret, address)),
            **updates.held_about(conn, address),
            **updates.webhooks_held_about(conn, supporter_key(secret, address)),
            **resolver.held_about(conn, address),
        }
        if organisation is None:
            return record
        theirs = set(campaigns_of(conn, organisation))
    signed = {str(s["id"]) for s in record.get("signatures", []) if s.get("campaign") in theirs}
    return {
        section: [
            row
            for row in rows
            if row.get("campaign") in theirs
            or ("campaign" not in row and str(row.get("signature_id")) in signed)
        ]
        for section, rows in record.items()
    }
