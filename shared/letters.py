"""The letter in the supporter's name, rendered the one way everyone shows it: the mailer sends it,
and intake's confirm page shows it before the supporter presses the button.

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
from functools import lru_cache
from html import escape

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from shared.campaigns import MESSAGE_BLOCK, Campaign
from shared.messages import Supporter, Target

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
