"""The staff pages' campaign form: its fields to a campaign and back.

The form is flat (``letter_body``, ``target_kind``); a campaign is the nested definition a
campaign file holds. ``checked`` builds the definition from the form and validates it with the
one model every campaign goes through (``shared.campaigns.Campaign``), so the form refuses what
``dearmp campaigns load`` refuses, with the same words (``campaign_problems``), each shown at its
field. Only what a form needs on top is checked here: that a date is a date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.campaigns import Campaign, campaign_problems

UK = ZoneInfo("Europe/London")

# Each field of the form, and its label (also the error summary's words before the problem).
LABELS = {
    "slug": "Address",
    "title": "Title",
    "story": "Story",
    "language": "Language of the letter",
    "target_kind": "Who the letters go to",
    "target_name": "Fixed target's name",
    "target_email": "Fixed target's email address",
    "target_handle": "Fixed target's handle on X",
    "letter_subject": "Letter subject",
    "letter_body": "Letter",
    "letter_html": "Letter as HTML",
    "letter_editable": "Supporters may edit the letter",
    "delivery_digest": "One email a day to each MP",
    "goal": "Signature goal",
    "opens_at": "Opens at",
    "closes_at": "Closes at",
    "thank_you": "Thank-you text",
    "share_text": "Share text",
    "disclosure": "Disclosure line",
    "privacy_url": "Privacy link",
    "terms_url": "Terms link",
    "show_reply_rate": "Show how many MPs replied",
}
CHECKBOXES = ("letter_editable", "delivery_digest", "show_reply_rate")
TEXTS = tuple(k for k in LABELS if k not in CHECKBOXES)
AREAS = frozenset(("story", "letter_body", "letter_html", "thank_you"))
# Where the model reports a problem (``letter.body``) → the form's field.
_FIELD_OF = {
    "target": "target_name",
    "target.kind": "target_kind",
    "letter": "letter_body",
    "campaign": "title",
}
DATE_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


@dataclass
class Checked:
    values: dict[str, str]  # what was typed, to show again
    campaign: Campaign | None = None
    errors: dict[str, str] = field(default_factory=dict)


def values_of(campaign: Campaign) -> dict[str, str]:
    """The form's fields for a stored campaign."""
    target, letter = campaign.target, campaign.letter
    return {
        "slug": campaign.slug,
        "title": campaign.title,
        "story": campaign.story,
        "language": campaign.language,
        "target_kind": target.kind,
        "target_name": target.name or "",
        "target_email": target.email or "",
        "target_handle": target.handle or "",
        "letter_subject": letter.subject,
        "letter_body": letter.body,
        "letter_html": letter.html or "",
        "letter_editable": "yes" if letter.editable else "",
        "delivery_digest": "yes" if campaign.delivery == "digest" else "",
        "goal": str(campaign.goal),
        "opens_at": _local(campaign.opens_at),
        "closes_at": _local(campaign.closes_at),
        "thank_you": campaign.thank_you,
        "share_text": campaign.share_text,
        "disclosure": campaign.disclosure,
        "privacy_url": campaign.privacy_url,
        "terms_url": campaign.terms_url,
        "show_reply_rate": "yes" if campaign.show_reply_rate else "",
    }


def _local(at: datetime | None) -> str:
    return at.astimezone(UK).strftime("%Y-%m-%dT%H:%M") if at else ""


def _when(text: str) -> datetime | None:
    """A date and time typed in UK time (``2027-01-31T09:00``, a space for the T, or a date
    alone: midnight)."""
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UK)
        except ValueError:
            continue
    raise ValueError(text)


def checked(form: dict[str, str], *, slug: str | None = None, switched_on: bool = False) -> Checked:
    """The campaign the form describes, or the problems with it. ``slug``: the campaign being
    edited (its address does not change); None for a new one. ``switched_on``: whether it
    takes signatures once open (a new campaign starts paused, so nobody signs a draft); an
    opening date still to come switches it on, to open by itself then."""
    values = {k: form.get(k, "").replace("\r\n", "\n") for k in TEXTS}
    for name in TEXTS:  # a textarea's text is kept as typed: it may be a template
        if name not in AREAS:
            values[name] = values[name].strip()
    for name in CHECKBOXES:
        values[name] = "yes" if form.get(name) == "yes" else ""
    if slug is not None:
        values["slug"] = slug
    errors: dict[str, str] = {}
    dates: dict[str, datetime | None] = {}
    for name in ("opens_at", "closes_at"):
        try:
            dates[name] = _when(values[name]) if values[name] else None
        except ValueError:
            errors[name] = f"{LABELS[name]}: enter a date and time like 2027-01-31 09:00 (UK time)"
    opens_at = dates.get("opens_at")
    if opens_at is not None and opens_at > datetime.now(UK):
        switched_on = True  # a date to open at is a plan to open: it opens by itself then
    kind = values["target_kind"]
    data: dict[str, Any] = {
        "slug": values["slug"],
        "title": values["title"],
        "story": values["story"],
        "language": values["language"] or "en",
        "target": {
            "kind": kind,
            # An MP campaign has no named target: what was typed there is left out.
            **(
                {"name": values["target_name"] or None, "email": values["target_email"] or None}
                if kind != "mp"
                else {}
            ),
            "handle": (values["target_handle"] or None) if kind != "mp" else None,
        },
        "letter": {
            "subject": values["letter_subject"],
            "body": values["letter_body"],
            "html": values["letter_html"] if values["letter_html"].strip() else None,
            "editable": bool(values["letter_editable"]),
        },
        "delivery": "digest" if values["delivery_digest"] else "individual",
        "goal": values["goal"] or "1000",
        "privacy_url": values["privacy_url"] or "/privacy",
        "terms_url": values["terms_url"] or "/terms",
        "open": switched_on,
        "opens_at": dates.get("opens_at"),
        "closes_at": dates.get("closes_at"),
        "thank_you": values["thank_you"],
        "share_text": values["share_text"],
        "disclosure": values["disclosure"],
        "show_reply_rate": bool(values["show_reply_rate"]),
    }
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        for where, what in campaign_problems(exc):
            name = field_of(where)
            if name in errors:
                continue  # the first problem at a field (or a date that is not one)
            errors[name] = f"{LABELS[name]}: {what}"
        return Checked(values, errors=errors)
    if errors:
        return Checked(values, errors=errors)
    return Checked(values, campaign=campaign)


def field_of(where: str) -> str:
    """The form field for a problem the model reports at ``where``."""
    if where in _FIELD_OF:
        return _FIELD_OF[where]
    name = where.replace(".", "_")
    if name in LABELS:
        return name
    head = where.split(".")[0]
    return _FIELD_OF.get(head, head if head in LABELS else "title")
