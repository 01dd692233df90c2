"""What each email says: confirmation, the letter, the unresolvable notice."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from uuid import UUID

import jinja2

from shared.campaigns import Campaign, template_env
from shared.config import Settings
from shared.mail import build_message
from shared.messages import Supporter, Target

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=jinja2.select_autoescape(["html"]),
    keep_trailing_newline=True,
)


def message_id(purpose: str, signature_id: UUID, settings: Settings) -> str:
    """Deterministic per (signature, purpose): a resend after a crash carries the same id."""
    return f"<{purpose}.{signature_id}@{settings.mail_domain}>"


def _service_from(settings: Settings) -> tuple[str, str]:
    return "Dear MP", f"hello@{settings.mail_domain}"


def letter_context(campaign: Campaign, supporter: Supporter, target: Target) -> dict[str, object]:
    return {
        "target": target.model_dump(),
        "supporter": {
            **supporter.model_dump(exclude={"email", "opt_in"}),
            "full_name": supporter.full_name,
            "address": "\n".join([*supporter.address_lines, supporter.postcode]),
        },
        "campaign": {"title": campaign.title, "slug": campaign.slug},
    }


def render_letter(campaign: Campaign, supporter: Supporter, target: Target) -> tuple[str, str]:
    env = template_env()
    context = letter_context(campaign, supporter, target)
    subject = env.from_string(campaign.letter.subject).render(context)
    body = env.from_string(campaign.letter.body).render(context)
    return subject, body


def letter(
    signature_id: UUID, campaign: Campaign, supporter: Supporter, target: Target, settings: Settings
) -> EmailMessage:
    subject, body = render_letter(campaign, supporter, target)
    return build_message(
        from_name=f"{supporter.full_name} via Dear MP",
        from_addr=f"letters@{settings.mail_domain}",
        to_name=target.name,
        to_addr=target.email or "",
        reply_to=(supporter.full_name, supporter.email),
        subject=subject,
        text=body,
        message_id=message_id("letter", signature_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


def confirmation(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    confirm_url: str,
    settings: Settings,
) -> EmailMessage:
    context = {"supporter": supporter, "campaign": campaign, "confirm_url": confirm_url}
    return build_message(
        from_name=_service_from(settings)[0],
        from_addr=_service_from(settings)[1],
        to_name=supporter.full_name,
        to_addr=supporter.email,
        subject=f"Confirm your signature: {campaign.title}",
        text=_templates.get_template("confirmation.txt").render(context),
        message_id=message_id("confirmation", signature_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


def unresolvable_notice(
    signature_id: UUID, campaign: Campaign, supporter: Supporter, message: str, settings: Settings
) -> EmailMessage:
    context = {
        "supporter": supporter,
        "campaign": campaign,
        "message": message,
        "campaign_url": f"{settings.base_url}/c/{campaign.slug}",
    }
    return build_message(
        from_name=_service_from(settings)[0],
        from_addr=_service_from(settings)[1],
        to_name=supporter.full_name,
        to_addr=supporter.email,
        subject=f"We could not send your letter: {campaign.title}",
        text=_templates.get_template("unresolvable.txt").render(context),
        message_id=message_id("unresolvable", signature_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )
