""" "Can't sign? Tell us": requests stored for staff.

Error messages are English literals marked with ``N_``; the help page translates them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine

from services.intake import ratelimit
from services.intake.forms import CONTROL_RE, EMAIL_FORMAT, EMAIL_REQUIRED, neutralise_comment
from services.intake.models import help_requests
from shared.config import Settings
from shared.i18n_markers import N_
from shared.supporters import supporter_key

MESSAGE_MAX = 3000
MESSAGE_REQUIRED = N_("Tell us what went wrong")
MESSAGE_TOO_LONG = N_("Your message must be 3000 characters or fewer")  # MESSAGE_MAX
NAME_FORMULA = N_("Your name cannot start with = + - or @")


def submit_help_request(
    engine: Engine, settings: Settings, campaign: str, data: dict[str, Any], client_ip: str
) -> dict[str, str] | None:
    """Store a help request. Returns field errors ({} when stored), or None when rate-limited."""
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
        conn.execute(
            help_requests.insert().values(
                campaign=campaign,
                name=name,
                email=email,
                supporter_key=supporter_key(settings.secret_key, email),
                message=message,
                created_at=datetime.now(UTC),
            )
        )
    return {}
