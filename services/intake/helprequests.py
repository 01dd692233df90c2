""" "Can't sign? Tell us": requests stored for staff, each announced by ``help.requested`` in
the same transaction (the outbox): the mailer acknowledges it to the person, in the page's
language and with nothing they typed (nobody has confirmed the address), and tells the campaign's
organisation's owners and editors. Staff answer from the staff page
(``services/intake/admin/help_requests.py``).

Error messages are English literals marked with ``N_``; the help page translates them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Connection, Engine

from services.intake import ratelimit
from services.intake.forms import CONTROL_RE, EMAIL_FORMAT, EMAIL_REQUIRED, neutralise_comment
from services.intake.models import help_requests
from shared import outbox
from shared.config import Settings
from shared.i18n_markers import N_
from shared.messages import HelpRequested, Language
from shared.organisations import organisation_of
from shared.supporters import supporter_key

MESSAGE_MAX = 3000
MESSAGE_REQUIRED = N_("Tell us what went wrong")
MESSAGE_TOO_LONG = N_("Your message must be 3000 characters or fewer")  # MESSAGE_MAX
NAME_FORMULA = N_("Your name cannot start with = + - or @")


# Who is told of a new help request: those who can answer it, the roles with ``Power.EDIT``
# (``admin/roles.py``). The staff table (``admin/models.py``) is named here, not imported: the
# staff pages import the public pages, which import this module.
TOLD = ("owner", "editor")
staff = sa.table("staff", sa.column("email"), sa.column("role"), sa.column("organisation"))


def answerers(conn: Connection, campaign: str) -> list[str]:
    """The addresses of the campaign's organisation's owners and editors."""
    organisation = organisation_of(conn, campaign)
    if organisation is None:
        return []
    return list(
        conn.execute(
            sa.select(staff.c.email)
            .where(staff.c.organisation == organisation, staff.c.role.in_(TOLD))
            .order_by(staff.c.email)
        ).scalars()
    )


def submit_help_request(
    engine: Engine,
    settings: Settings,
    campaign: str,
    data: dict[str, Any],
    client_ip: str,
    language: Language = "en",
) -> dict[str, str] | None:
    """Store a help request and stage ``help.requested`` with it. Returns field errors ({} when
    stored), or None when rate-limited."""
    errors: dict[str, str] = {}
    name = " ".join(CONTROL_RE.sub("", str(data.get("name") or "")).split())[:200]
    email = str(data.get("email") or "").strip()
    message = neutralise_comment(str(data.get("message") or ""))
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = EMAIL_FORMAT if email else EMAIL_REQUIRED
    if not message:
        errors["message"] = MESSAGE_REQUIRED
    elif len(message) > MESSAGE_MAX:
        errors["message"] = MESSAGE_TOO_LONG
    if name.startswith(("=", "+", "-", "@")):
        errors["name"] = NAME_FORMULA
    with engine.begin() as conn:
        if not ratelimit.hit(
            conn,
            ratelimit.limit_key(settings.secret_key, "help-ip", client_ip),
            ratelimit.Limit.parse(settings.rate_limit_ip),
        ):
            return None
        if errors:
            return {k: errors[k] for k in ("name", "email", "message") if k in errors}
        public_id = conn.execute(
            help_requests.insert()
            .values(
                campaign=campaign,
                name=name,
                email=email,
                supporter_key=supporter_key(settings.secret_key, email),
                message=message,
                language=language,
                created_at=datetime.now(UTC),
            )
            .returning(help_requests.c.public_id)
        ).scalar_one()
        event = HelpRequested(
            request_id=public_id,
            campaign=campaign,
            email=email,
            language=language,
            staff=answerers(conn, campaign),
        )
        outbox.add(conn, event, correlation_id=public_id)
    return {}
