"""The letter in the supporter's name, rendered the one way everyone shows it: the mailer sends it,
intake's confirm page shows it before the supporter presses the button, the campaign page shows
it with placeholders, and the staff preview shows it for a sample supporter.

Campaign templates are written by organisers (``shared.templates``: Liquid, on a budget) and
filled with what supporters typed: the plain-text part is rendered as text (nothing escaped, so
"Tom & Jerry <3" stays as typed) and the HTML part, when the campaign has one, with autoescaping
on, so nothing a supporter types becomes markup.

A supporter's own wording of an editable letter replaces the template's ``message`` block as a
value, never compiled as a template (``{{ 7*7 }}`` stays ``{{ 7*7 }}``) and, in the HTML part,
escaped like everything else they typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from shared import templates
from shared.campaigns import Campaign
from shared.messages import Supporter, Target
from shared.templates import TemplateProblem, letter_names, own_words_html, supporter_fields

__all__ = [
    "RenderedLetter",
    "TemplateProblem",
    "letter_context",
    "own_words_html",
    "render_letter",
]


@dataclass(frozen=True)
class RenderedLetter:
    subject: str
    text: str
    html: str | None  # already escaped: safe to embed


def letter_context(campaign: Campaign, supporter: Supporter, target: Target) -> dict[str, object]:
    fields = supporter_fields(supporter)
    return letter_names(campaign.title, campaign.slug, fields, target.model_dump())


def placeholder_context(campaign: Campaign, target_name: str) -> dict[str, object]:
    """Placeholders for what we learn only when someone signs, as the campaign page shows the
    letter before anyone has. ``target_name``: the target's name, or a placeholder for it."""
    supporter = {
        "first_name": "[your first name]",
        "last_name": "[your last name]",
        "full_name": "[your name]",
        "comment": "[your own words, if you add them]",
        "address": "[your address]",
        "postcode": "[your postcode]",
        "address_lines": ["[your address]"],
        "language": campaign.language,
        "signed_at": None,
    }
    target = {"name": target_name, "email": "", "party": "", "kind": campaign.target.kind}
    return letter_names(campaign.title, campaign.slug, supporter, target)


def render_letter(campaign: Campaign, supporter: Supporter, target: Target) -> RenderedLetter:
    """The letter in the supporter's name. Their own wording (``supporter.letter``) replaces the
    message block only if the campaign's letter is editable; otherwise it is ignored. Raises
    ``TemplateProblem`` when the campaign's template cannot be written within its budget."""
    own_words = supporter.letter if campaign.letter.editable else ""
    return render_with(campaign, letter_context(campaign, supporter, target), own_words)


def render_with(
    campaign: Campaign, context: dict[str, object], own_words: str = ""
) -> RenderedLetter:
    """The campaign's letter for ``context`` (``letter_context`` or ``placeholder_context``)."""
    spec = campaign.letter
    html = (
        templates.render(
            spec.html,
            context,
            html=True,
            own_words=own_words_html(own_words) if own_words else None,
        )
        if spec.html
        else None
    )
    text = templates.render(spec.body, context, own_words=own_words or None)
    if campaign.disclosure:  # the campaign's own words, as a value: never run as a template
        text = f"{text.rstrip()}\n\n{campaign.disclosure}\n"
        if html is not None:
            html = f"{html.rstrip()}\n<p>{escape(campaign.disclosure)}</p>\n"
    return RenderedLetter(subject=templates.render(spec.subject, context), text=text, html=html)


def message_words(campaign: Campaign, context: dict[str, object]) -> str | None:
    """The words of the letter's message block alone, written out for ``context``; None when it
    has none."""
    block = templates.message_block(campaign.letter.body)
    return None if block is None else templates.render_nodes(block, context)


@dataclass(frozen=True)
class OfficeFooter:
    """The short, fixed note under a letter or a digest for the office that receives it: who it
    is from, how to answer them, how to reach us. Always in English (an MP's office's)."""

    text: str
    html: str


def office_footer(
    campaign_title: str,
    operator_contact: str,
    *,
    constituent: tuple[str, str] | None = None,
    organisation: str | None = None,
) -> OfficeFooter:
    """``constituent``: (name, email) of a letter's sender; None for a digest, whose rows name
    theirs. ``organisation``: who runs the campaign, when known. ``operator_contact``: our
    address (``operator_address``)."""
    run_by = f" run by {organisation}" if organisation else ""
    campaign = f"the campaign “{campaign_title}”{run_by}"
    if constituent is not None:
        name, email = constituent
        lines = [
            f"Sent by Dear MP on behalf of {name}, who signed {campaign}.",
            f"To reply to {name}, write to {email} (pressing Reply does).",
            f"To contact Dear MP: {operator_contact}.",
        ]
    else:
        lines = [
            f"Sent by Dear MP on behalf of the constituents named above, who signed {campaign}.",
            "To reply to one of them, write to the email address given with their name "
            "(pressing Reply writes to Dear MP, not to them).",
            f"To receive each letter on its own instead of one email a day, or to contact "
            f"Dear MP: {operator_contact}.",
        ]
    html_lines = [escape(line) for line in lines]
    for address in {operator_contact, *(constituent[1:] if constituent else ())}:
        mailto = f'<a href="mailto:{escape(address)}">{escape(address)}</a>'
        html_lines = [line.replace(escape(address), mailto, 1) for line in html_lines]
    html = (
        '<hr style="border:0;border-top:1px solid #b1b4b6;margin:24px 0 8px">\n'
        '<p style="font-family:Arial,sans-serif;font-size:13px;line-height:1.4;color:#505a5f">'
        + "<br>\n".join(html_lines)
        + "</p>\n"
    )
    return OfficeFooter(text="-- \n" + "\n".join(lines) + "\n", html=html)


def operator_address(operator_contact: str, mail_domain: str) -> str:
    """Where an MP's office reaches us: ``DEARMP_OPERATOR_CONTACT``, else hello@ our domain."""
    return operator_contact.strip() or f"hello@{mail_domain}"
