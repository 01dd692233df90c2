"""What each email says: confirmation, reminder, the letter, the supporter's copy, the
unresolvable notice.

Campaign templates are written by staff and filled with what supporters typed: the plain-text
part is rendered as text (nothing escaped, so "Tom & Jerry <3" stays as typed) and the HTML part,
when the campaign has one, with autoescaping on, so nothing a supporter types becomes markup.

A supporter's own wording of an editable letter replaces the template's ``message`` block. It is
only ever a value: a fixed child template of ours (``_OWN_WORDS``) extends the campaign's and
fills the block with it, so the supporter's text is never compiled as a template (``{{ 7*7 }}``
stays ``{{ 7*7 }}``) and, in the HTML part, is escaped like everything else they typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from functools import lru_cache
from html import escape
from pathlib import Path
from uuid import UUID

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from shared.campaigns import MESSAGE_BLOCK, Campaign
from shared.config import Settings
from shared.mail import build_message, via_name
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


# Ours, never built from input: the campaign's letter with the supporter's words in its block.
_OWN_WORDS = (
    "{% extends dearmp_campaign_letter %}"
    f"{{% block {MESSAGE_BLOCK} %}}{{{{ dearmp_own_words }}}}{{% endblock %}}"
)


@lru_cache(maxsize=2)
def _own_words_template(html: bool) -> jinja2.Template:
    return (_html_env if html else _text_env).from_string(_OWN_WORDS)


def own_words_html(text: str) -> Markup:
    """The supporter's words as HTML paragraphs: blank lines part paragraphs, a line break
    becomes ``<br>``; every piece of their text escaped."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(p.split("\n"))) for p in paragraphs
    )


def _render_campaign(source: str, html: bool, context: dict[str, object], own_words: str) -> str:
    template = _campaign_template(source, html)
    if not own_words:
        return template.render(context)
    words = own_words_html(own_words) if html else own_words
    return _own_words_template(html).render(
        {**context, "dearmp_campaign_letter": template, "dearmp_own_words": words}
    )


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
            # Their own wording reaches the letter only through its message block.
            **supporter.model_dump(exclude={"email", "opt_in", "letter"}),
            "full_name": supporter.full_name,
            "address": "\n".join([*supporter.address_lines, supporter.postcode]),
        },
        "campaign": {"title": campaign.title, "slug": campaign.slug},
    }


def render_letter(campaign: Campaign, supporter: Supporter, target: Target) -> RenderedLetter:
    """The letter in the supporter's name. Their own wording (``supporter.letter``) replaces the
    message block only if the campaign's letter is editable; otherwise it is ignored."""
    context = letter_context(campaign, supporter, target)
    spec = campaign.letter
    own_words = supporter.letter if spec.editable else ""
    html = _render_campaign(spec.html, True, context, own_words) if spec.html else None
    text = _render_campaign(spec.body, False, context, own_words)
    if campaign.disclosure:  # the campaign's own words, as a value: never run as a template
        text = f"{text.rstrip()}\n\n{campaign.disclosure}\n"
        if html is not None:
            html = f"{html.rstrip()}\n<p>{escape(campaign.disclosure)}</p>\n"
    return RenderedLetter(
        subject=_campaign_template(spec.subject, False).render(context),
        text=text,
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
        from_name=via_name(supporter.full_name),
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
