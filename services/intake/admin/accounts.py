"""Staff accounts for the /admin pages, as `dearmp staff add EMAIL` and an organisation's owner
at ``/admin/accounts`` make them. Without an organisation an account is a platform operator;
with one it has one of the organisation's roles (``roles.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.intake.admin.auth import hash_password, normalise, password_problem
from services.intake.admin.models import staff, staff_sessions
from services.intake.admin.roles import ORGANISATION_ROLES, Role
from services.intake.admin.throttle import forget_account
from shared.reference import organisations


class StaffError(ValueError):
    """Input that cannot make an account; the message is one line for the operator."""


class AccountExists(StaffError):
    """The address already has an account where one was to be made."""


def checked_email(email: str) -> str:
    try:
        return normalise(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        raise StaffError(f"{email!r} is not an email address") from None


def checked_role(role: str | None, organisation: str | None) -> Role:
    """The role an account gets: an operator without an organisation, else one of the
    organisation's roles (a viewer unless it says)."""
    if organisation is None:
        if role not in (None, Role.OPERATOR):
            raise StaffError(f"a {role} belongs to an organisation: give --org SLUG")
        return Role.OPERATOR
    if role is None:
        return Role.VIEWER
    if role not in ORGANISATION_ROLES:
        names = ", ".join(ORGANISATION_ROLES)
        raise StaffError(f"{role!r} is not a role in an organisation (one of {names})")
    return Role(role)


def _organisation_exists(conn: Connection, organisation: str) -> None:
    found = conn.execute(
        sa.select(organisations.c.slug).where(organisations.c.slug == organisation)
    ).first()
    if found is None:
        raise StaffError(f"there is no organisation {organisation!r} (see 'dearmp orgs list')")


def add_staff(
    engine: Engine,
    email: str,
    password: str,
    *,
    update: bool = False,
    organisation: str | None = None,
    role: str | None = None,
    secret: str | None = None,
) -> str:
    """Create the account (or, with ``update``, set a new password and end its sessions, and
    with ``secret`` clear its wrong-password waits; its organisation and role stay). Returns what
    was done, as one line.

    An address may have an account in each organisation: whether it has one elsewhere changes
    nothing here, neither the answer nor the work done, so an owner adding it learns nothing
    about other organisations. A platform operator's address must be its own."""
    address = checked_email(email)
    problem = password_problem(password)
    if problem:
        raise StaffError(problem)
    given_role = checked_role(role, organisation)
    password_hash = hash_password(password)
    with engine.begin() as conn:
        if organisation is not None:
            _organisation_exists(conn, organisation)
        accounts = conn.execute(
            sa.select(staff.c.id, staff.c.organisation)
            .where(staff.c.email == address)
            .order_by(staff.c.id)
        ).all()
        chosen = _chosen(accounts, address, organisation) if update else None
        if chosen is not None:
            conn.execute(
                staff.update().where(staff.c.id == chosen.id).values(password_hash=password_hash)
            )
            conn.execute(staff_sessions.delete().where(staff_sessions.c.staff_id == chosen.id))
            if secret is None:
                return f"set a new password for {address} and ended its sessions"
            forget_account(conn, secret, address)
            return f"set a new password for {address}, unlocked it and ended its sessions"
        if any(a.organisation == organisation for a in accounts):
            raise AccountExists(f"{address} already has an account{_where(organisation)}")
        if organisation is None and accounts:
            raise StaffError(
                f"{address} has an account in an organisation: a platform operator needs an "
                "address of its own"
            )
        try:
            conn.execute(
                staff.insert().values(
                    email=address,
                    password_hash=password_hash,
                    created_at=datetime.now(UTC),
                    role=given_role,
                    organisation=organisation,
                )
            )
        except IntegrityError:  # added by someone else a moment ago
            raise AccountExists(f"{address} already has an account{_where(organisation)}") from None
        where = f" in {organisation} as {given_role}" if organisation else ""
        return f"added staff account {address}{where}"


def _where(organisation: str | None) -> str:
    return f" in {organisation}" if organisation else " as a platform operator"


def _chosen(accounts: Sequence[Any], address: str, organisation: str | None) -> Any:
    """Which of an address's accounts (rows with ``organisation``) a command means: the one in
    ``organisation``; without one, the platform operator's, else the address's only account."""
    if organisation is not None:
        return next((a for a in accounts if a.organisation == organisation), None)
    operator = next((a for a in accounts if a.organisation is None), None)
    if operator is not None or len(accounts) < 2:
        return operator or next(iter(accounts), None)
    names = ", ".join(sorted(a.organisation for a in accounts))
    raise StaffError(f"{address} has accounts in {names}: say which with --org SLUG")


def unlock_staff(engine: Engine, secret: str, email: str) -> str:
    """Clear the wrong passwords counted against an account from every place (``throttle.py``),
    so it may sign in again at once from anywhere. Returns what was done, as one line."""
    address = checked_email(email)
    with engine.begin() as conn:
        found = conn.execute(sa.select(staff.c.id).where(staff.c.email == address)).first()
        if found is None:
            raise StaffError(f"no staff account {address!r}")
        places = forget_account(conn, secret, address)
    return f"unlocked staff account {address} (waits cleared from {places} place(s))"


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    organisation: str | None
    created_at: datetime


def list_staff(conn: Connection, organisation: str | None = None) -> list[Account]:
    """The accounts of one organisation, or (None) every account; operators first, by email."""
    query = sa.select(staff).order_by(staff.c.organisation.nulls_first(), staff.c.email)
    if organisation is not None:
        query = query.where(staff.c.organisation == organisation)
    return [
        Account(r.id, r.email, r.role, r.organisation, r.created_at) for r in conn.execute(query)
    ]


def remove_staff(
    conn: Connection,
    *,
    email: str | None = None,
    account_id: int | None = None,
    organisation: str | None = None,
) -> str | None:
    """Delete an account (by id, or by email: the one ``_chosen`` names; only in
    ``organisation`` when given) and so its sessions. Returns its address, or None when there is
    no such account there. Refuses (``StaffError``) to remove the last owner of an organisation:
    the check and the removal are one transaction that holds the organisation's owners' rows
    (see ``_keep_an_owner``)."""
    if email is None and account_id is None:
        raise StaffError("say which account to remove")
    query = sa.select(staff.c.id, staff.c.email, staff.c.organisation).order_by(staff.c.id)
    if email is not None:
        query = query.where(staff.c.email == normalise(email))
    if account_id is not None:
        query = query.where(staff.c.id == account_id)
    if organisation is not None:
        query = query.where(staff.c.organisation == organisation)
    rows = conn.execute(query).all()
    if account_id is not None:
        found = rows[0] if rows else None
    else:
        found = _chosen(rows, normalise(email or ""), organisation)
    if found is None:
        return None
    if found.organisation is not None:
        _keep_an_owner(conn, found.organisation, found.id, found.email)
    return conn.execute(
        staff.delete().where(staff.c.id == found.id).returning(staff.c.email)
    ).scalar_one_or_none()


def _keep_an_owner(conn: Connection, organisation: str, leaving: int, email: str) -> None:
    """Refuse when account ``leaving`` is the only owner ``organisation`` has.

    Locks every owner row of the organisation, in id order, before counting: a second removal
    (or any change of an owner) in another transaction waits here until this one commits, then
    counts what is left. Two owners removing each other at once therefore leave one, never none;
    taking the rows in one order makes them queue rather than deadlock."""
    owners = (
        conn.execute(
            sa.select(staff.c.id)
            .where(staff.c.organisation == organisation, staff.c.role == Role.OWNER)
            .order_by(staff.c.id)
            .with_for_update()
        )
        .scalars()
        .all()
    )
    if leaving in owners and len(owners) == 1:
        raise StaffError(f"{email} is the last owner of {organisation}: add another owner first")
