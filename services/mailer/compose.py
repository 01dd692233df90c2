"""What each email says: confirmation, reminder, the letter, the supporter's copy, the
unresolvable notice.

Campaign templates are written by staff and filled with what supporters typed: the plain-text
part is rendered as text (nothing escaped, so "Tom & Jerry <3" stays as typed) and the HTML part,
when the campaign has one, with autoescaping on, so nothing a supporter types becomes markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from uuid import UUID

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from shared.campaigns import Campaign
from shared.config import Settings
from shared.mail import build_message
from shared.messages import Supporter, Target

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=jinja2.select_autoescape(["html"]),
    keep_trailing_newline=True,
    auto_reload=False,  # our own templates, shipped with the code: no stat() per message
)
# Staff-written templates: sandboxed and strict, as shared.campaigns.template_env(); one
# environment for text, one that escapes for HTML. Compiled once per template source.
_text_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_html_env = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=True
)


@lru_cache(maxsize=512)
def _campaign_template(source: str, html: bool) -> jinja2.Template:
    return (_html_env if html else _text_env).from_string(source)


@dataclass(frozen=True)
class RenderedLetter:
    subject: str
    text: str
    html: str | None  # already escaped: safe to embed


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


def render_letter(campaign: Campaign, supporter: Supporter, target: Target) -> RenderedLetter:
    context = letter_context(campaign, supporter, target)
    spec = campaign.letter
    html = _campaign_template(spec.html, True).render(context) if spec.html else None
    return RenderedLetter(
        subject=_campaign_template(spec.subject, False).render(context),
        text=_campaign_template(spec.body, False).render(context),
        html=html,
    )


def letter(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    target: Target,
    settings: Settings,
    rendered: RenderedLetter | None = None,
) -> EmailMessage:
    """To the target, in the supporter's name: never From the supporter's address (DMARC)."""
    rendered = rendered or render_letter(campaign, supporter, target)
    return build_message(
        from_name=f"{supporter.full_name} via Dear MP",
        from_addr=f"letters@{settings.mail_domain}",
        to_name=target.name,
        to_addr=target.email or "",
        reply_to=(supporter.full_name, supporter.email),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id("letter", signature_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


def copy(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    target: Target,
    settings: Settings,
    rendered: RenderedLetter | None = None,
) -> EmailMessage:
    """To the supporter: "this is what we sent to <target>", text and (if any) the HTML letter."""
    rendered = rendered or render_letter(campaign, supporter, target)
    context = {
        "supporter": supporter,
        "campaign": campaign,
        "target": target,
        "letter": rendered,
        "letter_html": Markup(rendered.html) if rendered.html else None,
    }
    html = _templates.get_template("copy.html").render(context) if rendered.html else None
    return build_message(
        from_name=_service_from(settings)[0],
        from_addr=_service_from(settings)[1],
        to_name=supporter.full_name,
        to_addr=supporter.email,
        subject=f"Your letter to {target.name}: {rendered.subject}",
        text=_templates.get_template("copy.txt").render(context),
        html=html,
        message_id=message_id("copy", signature_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


def confirmation(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    confirm_url: str,
    settings: Settings,
    *,
    reminder: bool = False,
) -> EmailMessage:
    """The confirmation email, or (``reminder``) the one reminder a day later, with a new link."""
    context = {"supporter": supporter, "campaign": campaign, "confirm_url": confirm_url}
    purpose = "reminder" if reminder else "confirmation"
    subject = f"Confirm your signature: {campaign.title}"
    return build_message(
        from_name=_service_from(settings)[0],
        from_addr=_service_from(settings)[1],
        to_name=supporter.full_name,
        to_addr=supporter.email,
        subject=f"Reminder: {subject}" if reminder else subject,
        text=_templates.get_template(f"{purpose}.txt").render(context),
        message_id=message_id(purpose, signature_id, settings),
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
