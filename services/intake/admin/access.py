"""Subject access: everything Dear MP holds about one person, gathered from each service's
``reports.py`` (the staff page ``/admin/supporters`` and ``dearmp supporters export EMAIL``).
The address is normalised as every service stores it; the mailer finds its rows by the keyed
hash of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from services.intake import reports as intake
from services.mailer import reports as mailer
from services.resolver import reports as resolver
from services.updates import reports as updates
from shared.supporters import normalise_email, supporter_key


def held_about(engine: Engine, email: str, secret: str) -> dict[str, list[dict[str, Any]]]:
    address = normalise_email(email)
    with engine.connect() as conn:
        return {
            **intake.held_about(conn, address),
            **mailer.held_about(conn, supporter_key(secret, address)),
            **updates.held_about(conn, address),
            **resolver.held_about(conn, address),
        }
