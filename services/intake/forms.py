"""Checking what a supporter typed: one set of rules for the web form and the JSON API.

Messages follow the GOV.UK Design System: say what to do, in plain words. Anything that could
become a header, a link in an MP's inbox or a formula in a staff spreadsheet is refused (names,
addresses) or neutralised (the comment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from shared import postcodes
from shared.messages import Supporter

NAME_MAX = 100
ADDRESS_MAX = 200
COMMENT_MAX = 1500
URL_RE = re.compile(r"(https?://|www\.|\b[a-z0-9-]+\.(com|net|org|uk|io|ru|info|xyz)\b)", re.I)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LINE_BREAK_RE = re.compile(r"[\r\n\u2028\u2029\x85]")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The order fields appear on the page: the error summary lists errors in this order.
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "address_line1",
    "address_line2",
    "town",
    "postcode",
    "comment",
    "consent",
)


@dataclass
class Checked:
    supporter: Supporter | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(value: Any) -> str:
    return CONTROL_RE.sub("", str(value or "")).strip()


def _single_line(
    errors: dict[str, str],
    name: str,
    value: str,
    label: str,
    *,
    required: bool,
    limit: int,
    allow_urls: bool = True,
) -> str:
    if not value:
        if required:
            errors[name] = f"Enter your {label}"
        return ""
    if LINE_BREAK_RE.search(value):
        errors[name] = f"Your {label} must be on one line"
    elif len(value) > limit:
        errors[name] = f"Your {label} must be {limit} characters or fewer"
    elif value.startswith(FORMULA_PREFIXES):
        errors[name] = f"Your {label} cannot start with = + - or @"
    elif not allow_urls and URL_RE.search(value):
        errors[name] = f"Your {label} cannot contain a web address"
    return value


def neutralise_comment(comment: str) -> str:
    """Keep the supporter's words; drop what a spreadsheet would run as a formula."""
    lines = [
        line.rstrip() for line in comment.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    lines = [
        line.lstrip("=+@\t") if line.lstrip().startswith(("=", "+", "@")) else line
        for line in lines
    ]
    return "\n".join(lines).strip()


def check_signature(data: dict[str, Any], *, needs_mp: bool) -> Checked:
    """Validate and normalise a signature. ``needs_mp``: the campaign writes to the supporter's MP,
    so the postcode must have one."""
    errors: dict[str, str] = {}
    first = _single_line(
        errors,
        "first_name",
        _text(data.get("first_name")),
        "first name",
        required=True,
        limit=NAME_MAX,
        allow_urls=False,
    )
    last = _single_line(
        errors,
        "last_name",
        _text(data.get("last_name")),
        "last name",
        required=True,
        limit=NAME_MAX,
        allow_urls=False,
    )
    email = _text(data.get("email"))
    if not email:
        errors["email"] = "Enter your email address"
    else:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            errors["email"] = "Enter an email address in the correct format, like name@example.com"
    line1 = _single_line(
        errors,
        "address_line1",
        _text(data.get("address_line1")),
        "first address line",
        required=True,
        limit=ADDRESS_MAX,
        allow_urls=False,
    )
    line2 = _single_line(
        errors,
        "address_line2",
        _text(data.get("address_line2")),
        "second address line",
        required=False,
        limit=ADDRESS_MAX,
        allow_urls=False,
    )
    town = _single_line(
        errors,
        "town",
        _text(data.get("town")),
        "town or city",
        required=True,
        limit=ADDRESS_MAX,
        allow_urls=False,
    )
    raw_postcode = _text(data.get("postcode"))
    postcode = postcodes.normalise(raw_postcode)
    if not raw_postcode:
        errors["postcode"] = "Enter your postcode"
    elif not postcodes.is_valid(postcode):
        errors["postcode"] = "Enter a real postcode, like SW1A 1AA"
    elif needs_mp and (why := postcodes.no_westminster_mp(postcode)):
        errors["postcode"] = (
            f"{why}, so there is no MP for us to write to. "
            "This campaign can only send letters to MPs at Westminster"
        )
    comment = neutralise_comment(str(data.get("comment") or ""))
    if len(comment) > COMMENT_MAX:
        errors["comment"] = f"Your message must be {COMMENT_MAX} characters or fewer"
    if not _truthy(data.get("consent")):
        errors["consent"] = "Tick the box to agree to the terms and privacy notice"
    if errors:
        return Checked(None, {k: errors[k] for k in FIELDS if k in errors})
    supporter = Supporter(
        first_name=first,
        last_name=last,
        email=email,
        postcode=postcode,
        address_lines=[line for line in (line1, line2, town) if line],
        comment=comment,
        opt_in=_truthy(data.get("opt_in")),
    )
    return Checked(supporter)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "y")
