""" "Can't sign? Tell us": requests stored for staff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine

from services.intake import ratelimit
from services.intake.forms import neutralise_comment
from services.intake.models import help_requests
from shared.config import Settings


def submit_help_request(
    engine: Engine, settings: Settings, campaign: str, data: dict[str, Any], client_ip: str
) -> dict[str, str] | None:
    """Store a help request. Returns field errors ({} when stored), or None when rate-limited."""
    errors: dict[str, str] = {}
    name = " ".join(str(data.get("name") or "").split())[:200]
    email = str(data.get("email") or "").strip()
    message = neutralise_comment(str(data.get("message") or ""))
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = (
            "Enter your email address"
            if not email
            else "Enter an email address in the correct format, like name@example.com"
        )
    if not message:
        errors["message"] = "Tell us what went wrong"
    elif len(message) > 3000:
        errors["message"] = "Your message must be 3000 characters or fewer"
    if name.startswith(("=", "+", "-", "@")):
        errors["name"] = "Your name cannot start with = + - or @"
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
                message=message,
                created_at=datetime.now(UTC),
            )
        )
    return {}
