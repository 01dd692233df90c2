"""Staff accounts for the /admin pages, as `dearmp staff add EMAIL` makes them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine

from services.intake.admin.auth import hash_password, normalise, password_problem
from services.intake.admin.models import staff, staff_sessions


class StaffError(ValueError):
    """Input that cannot make an account; the message is one line for the operator."""


def checked_email(email: str) -> str:
    try:
        return normalise(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        raise StaffError(f"{email!r} is not an email address") from None


def add_staff(engine: Engine, email: str, password: str, *, update: bool = False) -> str:
    """Create the account (or, with ``update``, set a new password, unlock it and end its
    sessions). Returns what was done, as one line."""
    address = checked_email(email)
    problem = password_problem(password)
    if problem:
        raise StaffError(problem)
    password_hash = hash_password(password)
    with engine.begin() as conn:
        existing = conn.execute(
            sa.select(staff.c.id).where(staff.c.email == address).with_for_update()
        ).first()
        if existing is None:
            conn.execute(
                staff.insert().values(
                    email=address, password_hash=password_hash, created_at=datetime.now(UTC)
                )
            )
            return f"added staff account {address}"
        if not update:
            raise StaffError(
                f"{address} already has an account (use --update to set a new password)"
            )
        conn.execute(
            staff.update()
            .where(staff.c.id == existing.id)
            .values(password_hash=password_hash, failed_attempts=0, locked_until=None)
        )
        conn.execute(staff_sessions.delete().where(staff_sessions.c.staff_id == existing.id))
        return f"set a new password for {address}, unlocked it and ended its sessions"
