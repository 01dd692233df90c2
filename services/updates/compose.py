"""What an update email says, rendered once per update and personalised per subscriber.

The templates are rendered once, with markers where the subscriber's first name and their
unsubscribe link go; each subscriber's copy only replaces the markers (the name HTML-escaped in
the HTML part). The body is staff-written markdown: the text part carries it as plain text
(``plain_text.markdown_as_text``: no ``**`` or ``[words](link)`` left), the HTML part renders it
with raw HTML disabled, so nothing staff paste becomes a script.

Every copy has a deterministic Message-ID per (update, subscriber), so a copy resent after a crash
carries the same id, ``List-Unsubscribe`` with an https and a mailto link, and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

``UpdateMail.build`` makes the copy as a ``shared.mail.build_message`` message; ``UpdateMail.wire``
writes the same message straight to bytes (``wire.py``), which is what the fan-out sends.
``trial_copy`` is the staff composer's "send a test to me": the same builder, the same From.
"""

from __future__ import annotations

import html
import secrets
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import jinja2
from markupsafe import Markup

from services.updates.plain_text import markdown_as_text
from shared import i18n
from shared.config import Settings
from shared.mail import build_message
from shared.markdown import render_markdown
from shared.unsubscribe import make_unsubscribe_token, unsubscribe_mailto, unsubscribe_url

FROM_NAME = "Dear MP"
TEMPLATE_DIR = Path(__file__).parent / "templates"
LOCALE_DIR = Path(__file__).parent / "locales"


def _templates(language: str) -> jinja2.Environment:
    return i18n.email_templates(TEMPLATE_DIR, LOCALE_DIR, language)


@dataclass(frozen=True)
class UpdateContent:
    campaign: str
    campaign_title: str
    number: int
    title: str
    body: str  # markdown
    # The name on the copies: the campaign's organisation's ("ECPAT UK via Dear MP").
    sender_name: str = FROM_NAME


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    signature_id: uuid.UUID
    email: str
    first_name: str
    language: str = "en"  # of everything but the update itself (staff-written)


@dataclass(frozen=True)
class Copy:
    """One subscriber's personal parts."""

    language: str
    message_id: str
    list_unsubscribe: str
    text: str
    html: str


class UpdateMail:
    def __init__(self, content: UpdateContent, settings: Settings):
        self.content = content
        self.secret = settings.secret_key
        self.base_url = settings.base_url
        self.mail_domain = settings.mail_domain
        self.from_addr = f"updates@{settings.mail_domain}"
        self.fixed_headers = {
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{content.campaign_title} <{content.campaign}.updates.{self.mail_domain}>",
        }
        nonce = secrets.token_hex(8)
        self._name, self._link = f"\ue000name{nonce}\ue001", f"\ue000link{nonce}\ue001"
        self._context = {
            "first_name": self._name,
            "unsubscribe_url": self._link,
            "campaign_title": content.campaign_title,
            "campaign_url": f"{self.base_url.rstrip('/')}/c/{content.campaign}",
            "number": content.number,
            "title": content.title,
            "body": markdown_as_text(content.body),
            "body_html": Markup(render_markdown(content.body, 1)),  # below the email's h1
        }
        self._parts: dict[str, tuple[str, str, str]] = {}

    def parts(self, language: str) -> tuple[str, str, str]:
        """The subject, text and HTML with markers, in ``language``; rendered once per update."""
        if language not in self._parts:
            language = language if language in i18n.LANGUAGES else i18n.DEFAULT
            env, context = _templates(language), {**self._context, "language": language}
            text = env.get_template("update.txt").make_module(context)
            self._parts[language] = (
                str(text.subject).strip(),  # type: ignore[attr-defined]
                str(text),
                env.get_template("update.html").render(context),
            )
        return self._parts[language]

    @property
    def subject(self) -> str:
        return self.parts(i18n.DEFAULT)[0]

    def message_id(self, signature_id: uuid.UUID) -> str:
        return f"<update.{self.content.campaign}.{self.content.number}.{signature_id}@{self.mail_domain}>"

    def token(self, recipient: Recipient) -> str:
        return make_unsubscribe_token(self.secret, recipient.signature_id, self.content.campaign)

    def copy_for(self, recipient: Recipient) -> Copy:
        token = self.token(recipient)
        url = unsubscribe_url(self.base_url, token)
        mailto = unsubscribe_mailto(self.mail_domain, token)
        name = recipient.first_name
        _subject, text, page = self.parts(recipient.language)
        return Copy(
            language=recipient.language,
            message_id=self.message_id(recipient.signature_id),
            list_unsubscribe=f"<{url}>, <{mailto}>",
            text=text.replace(self._name, name).replace(self._link, url),
            html=page.replace(self._name, html.escape(name)).replace(self._link, html.escape(url)),
        )

    def build(self, recipient: Recipient) -> EmailMessage:
        """The copy as an ``EmailMessage`` (the safe, general path; slower than ``wire``)."""
        copy = self.copy_for(recipient)
        return build_message(
            from_name=self.content.sender_name,
            from_addr=self.from_addr,
            to_name="",
            to_addr=recipient.email,
            subject=self.parts(recipient.language)[0],
            text=copy.text,
            html=copy.html,
            message_id=copy.message_id,
            headers={"List-Unsubscribe": copy.list_unsubscribe, **self.fixed_headers},
        )


def sender_name(organisation_sender_name: str | None) -> str:
    """The From name of a campaign's update emails: its organisation's sender name, else ours."""
    return organisation_sender_name or FROM_NAME


def trial_copy(
    content: UpdateContent, settings: Settings, to: str, language: str = i18n.DEFAULT
) -> EmailMessage:
    """The update as its subscribers will get it (``UpdateMail.build``: the same From, parts and
    headers), to a staff member only, as a test: its subject starts "[Test]", the greeting shows
    where the name goes, and its unsubscribe link is for no signature (it unsubscribes nobody)."""
    mail = UpdateMail(content, settings)
    msg = mail.build(Recipient(0, uuid.uuid4(), to, "[first name]", language))
    subject = f"[Test] {msg['Subject']}"
    del msg["Subject"]
    msg["Subject"] = subject
    return msg
