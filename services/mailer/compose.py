"""What each email says: the letter (``shared.letters`` renders it), and everything we write to a
supporter: confirmation, reminder, copy, and the notices (could not send, seat vacant, already
signed). Emails to a supporter are in their language (``Supporter.language``; catalogues in
``locales/``, see ``shared.i18n``); the letter and the letter inside the copy stay in the
campaign's. Each template sets its own ``subject``, translated with its text.

Anyone can type anyone's address into the form, so the emails that go to an address nobody has
confirmed (the confirmation, its reminder, "you have already signed": ``_to_unconfirmed``) carry
nothing the signer typed (name, comment, own words, address) and no link but ours: see
``unconfirmed_context``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import jinja2
from babel.dates import format_date, format_datetime, get_timezone
from markupsafe import Markup

from shared import i18n
from shared.campaigns import Campaign
from shared.config import Settings
from shared.dates import long_date
from shared.letter_email import letter_email
from shared.letters import (
    RenderedLetter,
    letter_context,
    office_footer,
    operator_address,
    own_words_html,
    render_letter,
    render_with,
)
from shared.mail import build_message, via_name
from shared.messages import Supporter, Target
from shared.reasons import REASONS
from shared.states import SignatureStatus
from shared.templates import letter_names
from shared.tokens import THANKS, make_token

__all__ = ["RenderedLetter", "letter_context", "own_words_html", "render_letter"]
LOCALE_DIR = Path(__file__).parent / "locales"
TEMPLATE_DIR = Path(__file__).parent / "templates"
LONDON = get_timezone("Europe/London")


@lru_cache(maxsize=len(i18n.LANGUAGES))
def _templates(language: str) -> jinja2.Environment:
    env = i18n.email_templates(TEMPLATE_DIR, LOCALE_DIR, language)
    env.filters["when"] = lambda value: long_date(value, language)  # "7 December 2026"
    return env


def gettext(language: str, message: str) -> str:
    return i18n.translations(LOCALE_DIR, language).gettext(message)


def _to_supporter(
    purpose: str,
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    settings: Settings,
    context: dict[str, Any],
    *,
    html: str | None = None,
) -> EmailMessage:
    """An email from us to a supporter, in their language: ``<purpose>.txt`` gives the subject
    and the text, ``html`` (a template name) an HTML part."""
    env = _templates(supporter.language)
    context = {"supporter": supporter, "campaign": campaign, **context}
    text = env.get_template(f"{purpose}.txt").make_module(context)
    return build_message(
        from_name="Dear MP",
        from_addr=f"hello@{settings.mail_domain}",
        to_name=supporter.full_name,
        to_addr=supporter.email,
        subject=str(text.subject).strip(),  # type: ignore[attr-defined]
        text=str(text),
        html=env.get_template(html).render(context) if html else None,
        message_id=message_id(purpose, signature_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


class Addressee(Protocol):
    """Where an email to an unconfirmed address goes, and in which language: all it may use of
    the signature (a ``Supporter`` is one; so is the reminder's pending row)."""

    @property
    def email(self) -> str: ...

    @property
    def language(self) -> str: ...


def unconfirmed_context(campaign: Campaign, context: dict[str, Any]) -> dict[str, Any]:
    """What the template of an email to an unconfirmed address sees: the campaign (its title and
    target are the organisation's words: organisations are vetted) and ``context`` (our own links,
    built on ``DEARMP_BASE_URL``, and facts we looked up). No ``supporter``: a template that
    reaches for one fails to render (StrictUndefined) rather than carry a stranger's words."""
    return {"campaign": campaign, **context}


def _to_unconfirmed(
    purpose: str,
    once_per: UUID,
    campaign: Campaign,
    to: Addressee,
    settings: Settings,
    context: dict[str, Any],
) -> EmailMessage:
    """An email to an address nobody has confirmed, in its language: text only, greeting nobody
    by name, and no name beside the address in To (a name can carry words: "Claim your prize")."""
    env = _templates(to.language)
    text = env.get_template(f"{purpose}.txt").make_module(unconfirmed_context(campaign, context))
    return build_message(
        from_name="Dear MP",
        from_addr=f"hello@{settings.mail_domain}",
        to_name="",
        to_addr=to.email,
        subject=str(text.subject).strip(),  # type: ignore[attr-defined]
        text=str(text),
        message_id=message_id(purpose, once_per, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


def message_id(purpose: str, signature_id: UUID, settings: Settings) -> str:
    """Deterministic per (signature, purpose): a resend after a crash carries the same id."""
    return f"<{purpose}.{signature_id}@{settings.mail_domain}>"


def letter(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    target: Target,
    settings: Settings,
    rendered: RenderedLetter | None = None,
    *,
    to: Target | None = None,
    purpose: str = "letter",
    organisation: str | None = None,
) -> EmailMessage:
    """To the target, in the supporter's name: never From the supporter's address (DMARC).
    ``to``: another recipient of the same letter (``fixed_copy``: a campaign whose target is
    ``both`` sends the letter to the MP and a copy of it to its fixed target). ``organisation``:
    who runs the campaign, named in the office footer (``running_organisation``)."""
    rendered = rendered or render_letter(campaign, supporter, target)
    return letter_email(
        campaign,
        supporter,
        to or target,
        rendered,
        message_id=message_id(purpose, signature_id, settings),
        mail_domain=settings.mail_domain,
        operator_contact=settings.operator_contact,
        organisation=organisation,
    )


def fixed_target(campaign: Campaign) -> Target:
    """The campaign's named target (a ``fixed`` or ``both`` campaign's)."""
    spec = campaign.target
    return Target(name=spec.name or "", email=spec.email, kind="fixed")


def copy(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    target: Target,
    settings: Settings,
    rendered: RenderedLetter | None = None,
    *,
    waits_for: date | None = None,
    digest: bool = False,
) -> EmailMessage:
    """To the supporter: "this is what we sent to <target>", text and (if any) the HTML letter.
    ``waits_for``: the letter has not gone yet: it goes on that day (the daily cap), or in that
    day's digest (``digest``), sent once the day is over."""
    rendered = rendered or render_letter(campaign, supporter, target)
    context = {
        "target": target,
        "letter": rendered,
        "letter_html": Markup(rendered.html) if rendered.html else None,
        "waits_for": long_date(waits_for, supporter.language)
        if waits_for
        else None,
        "digest": digest,
    }
    html = "copy.html" if rendered.html else None
    return _to_supporter("copy", signature_id, campaign, supporter, settings, context, html=html)


def confirmation(
    signature_id: UUID,
    campaign: Campaign,
    to: Addressee,
    confirm_url: str,
    settings: Settings,
    *,
    reminder: bool = False,
) -> EmailMessage:
    """The confirmation email, or (``reminder``) the one reminder a day later with a new link.
    The address is not confirmed yet, so neither shows the letter (it carries what the signer
    typed): they name the campaign and whom the letter goes to (a fixed target by name, else
    "your MP"), and the page behind the link shows the letter in full before its button."""
    fixed = campaign.target.kind == "fixed"
    target = Target(name=campaign.target.name or "", kind="fixed") if fixed else None
    context: dict[str, Any] = {"confirm_url": confirm_url, "target": target}
    purpose = "reminder" if reminder else "confirmation"
    return _to_unconfirmed(purpose, signature_id, campaign, to, settings, context)


def unresolvable_notice(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    reason: str,
    message: str,
    settings: Settings,
    *,
    target_name: str | None = None,
    constituency: str | None = None,
) -> EmailMessage:
    """Why the letter could not be sent (the reason in the supporter's language when we know
    it) and a link to sign again; for an MP who publishes no email address (``target_name``:
    signing again would end the same way), how to post the letter to them at the House of
    Commons instead, with a link to it ready to print (intake's ``printable.py``)."""
    known = REASONS.get(reason)
    token = make_token(settings.secret_key, THANKS, str(signature_id))
    context = {
        "message": gettext(supporter.language, known) if known else message,
        "campaign_url": f"{settings.base_url}/c/{campaign.slug}",
        "target_name": target_name,
        "constituency": constituency,
        "parliament": HOUSE_OF_COMMONS,
        "letter_url": f"{settings.base_url}/thanks/{token}/letter.pdf",
    }
    return _to_supporter("unresolvable", signature_id, campaign, supporter, settings, context)


# Where any MP can be written to by post (www.parliament.uk: "Contact your MP").
HOUSE_OF_COMMONS = ("House of Commons", "London", "SW1A 0AA")


def held_notice(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    constituency: str | None,
    settings: Settings,
    reason: str = "vacant_seat",
) -> EmailMessage:
    """The seat is vacant, or Parliament dissolved (``reason`` "dissolved"): the letter waits
    and goes to the new MP when one is elected."""
    context = {"constituency": constituency, "dissolved": reason == "dissolved"}
    return _to_supporter("held", signature_id, campaign, supporter, settings, context)


def already_signed(
    attempt_id: UUID,
    campaign: Campaign,
    to: Addressee,
    status: str,
    target_name: str | None,
    settings: Settings,
    sent_at: datetime | None = None,
) -> EmailMessage:
    """Someone signed again with an address whose signature is already confirmed: say so and
    where its letter stands; nothing new is sent to the target. This attempt is not confirmed
    (anyone may have made it), so nothing it typed is shown; the target is the one we resolved
    for the confirmed signature."""
    context = {
        "status": SignatureStatus(status),
        "target_name": target_name,
        "sent_at": sent_at,
        "campaign_url": f"{settings.base_url}/c/{campaign.slug}",
    }
    return _to_unconfirmed("repeat", attempt_id, campaign, to, settings, context)


def reply_question(
    signature_id: UUID,
    campaign: Campaign,
    supporter: Supporter,
    target: Target,
    letter_sent_at: datetime,
    links: dict[str, str],
    settings: Settings,
    *,
    reminder: bool = False,
) -> EmailMessage:
    """Has your MP replied? (or the named target, for a campaign that writes to one): three
    signed links, yes / not yet / no, each to a page with a button (services/mailer/replies.py).
    ``reminder``: the one reminder of it."""
    context = {
        "target": target,
        "is_mp": target.kind == "mp",
        "letter_sent_on": long_date(letter_sent_at, supporter.language),  # 18 November 2026
        "links": links,
    }
    purpose = "reply_reminder" if reminder else "reply_question"
    return _to_supporter(purpose, signature_id, campaign, supporter, settings, context)


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (= + - @ tab CR first)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@dataclass(frozen=True)
class DigestRow:
    """One constituent in a digest: what an office needs to answer them."""

    name: str
    email: str
    address_lines: list[str]
    comment: str  # their own words beside the campaign's letter
    own_letter: str  # their own version of an editable letter's words

    @property
    def address(self) -> str:
        return ", ".join(self.address_lines)

    @classmethod
    def of(cls, entry: dict[str, Any]) -> DigestRow:
        """From a ``letters.digest_entry`` (``scheduled.digest_entry``); rows stored before
        comments and own letters were told apart keep their words as a comment."""
        told_apart = "comment" in entry
        return cls(
            name=entry["name"],
            email=entry["email"],
            address_lines=[a for a in entry.get("address", []) if a],
            comment=(entry.get("comment") or "") if told_apart else (entry.get("words") or ""),
            own_letter=(entry.get("own_letter") or "") if told_apart else "",
        )


OFFICE_PLACEHOLDERS = {
    "first_name": "[the constituent's first name]",
    "last_name": "[the constituent's last name]",
    "full_name": "[the constituent's name]",
    "comment": "",  # their own words are in their row
    "address": "[their postal address]",
    "postcode": "[their postcode]",
    "address_lines": ["[their postal address]"],
    "signed_at": None,
}


def office_letter(campaign: Campaign, target_name: str) -> RenderedLetter:
    """The campaign's letter once, for a digest: to its real target, rendered as the letter is
    (``shared.letters.render_with``: the template on its budget, the disclosure line), each
    constituent's name and address a pointer to their row."""
    supporter = {**OFFICE_PLACEHOLDERS, "language": campaign.language}
    target = {"name": target_name, "email": "", "party": "", "kind": campaign.target.kind}
    return render_with(campaign, letter_names(campaign.title, campaign.slug, supporter, target))


def _paragraphs(text: str) -> Markup:
    """Plain text as HTML paragraphs, line breaks kept, everything escaped."""
    blocks = [b.strip("\n") for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("").join(
        Markup('<p style="margin:0 0 12px">{}</p>').format(Markup("<br>").join(block.split("\n")))
        for block in blocks
    )


def digest(
    digest_id: UUID,
    campaign: Campaign,
    recipient: str,
    day: date,
    entries: list[dict[str, Any]],
    settings: Settings,
    *,
    organisation: str | None = None,
) -> EmailMessage:
    """One email to an MP's office for a digest campaign's day: the campaign's letter once, then
    every constituent who wrote, with name, postal address, email (a mailto link to answer
    them) and their own words (a comment, or their own version of an editable letter), then
    the office footer; text and HTML parts (simple tables, inline styles: Outlook), and the
    rows as a CSV attachment. Reply-To is the operator (``DEARMP_OPERATOR_CONTACT``): a reply
    to the digest cannot go to thirty constituents, and never to our letters@. Built only from
    its rows and the campaign, so a resend after a crash says the same, under the same
    Message-ID."""
    target = entries[-1].get("target") or "" if entries else ""
    when = format_date(day, format="long", locale="en_GB")
    rows = [DigestRow.of(entry) for entry in entries]
    operator = operator_address(settings.operator_contact, settings.mail_domain)
    footer = office_footer(campaign.title, operator, organisation=organisation)
    letter = office_letter(campaign, target or "Member of Parliament")
    context = {
        "campaign": campaign,
        "target": target,
        "when": when,
        "rows": rows,
        "rewrote": [row for row in rows if row.own_letter],
        "letter": letter,
        "letter_html": Markup(letter.html) if letter.html else _paragraphs(letter.text),
        "footer": footer,
        "footer_html": Markup(footer.html),
        "organisation": organisation,
        "paragraphs": _paragraphs,
    }
    env = _templates("en")  # an MP's office: the campaign's language, not a supporter's
    msg = build_message(
        from_name=via_name(campaign.title),
        from_addr=f"letters@{settings.mail_domain}",
        to_name=target,
        to_addr=recipient,
        reply_to=("Dear MP", operator),
        subject=f"{campaign.title}: {len(entries)} constituents wrote to you on {when}",
        text=env.get_template("digest.txt").render(context),
        html=env.get_template("digest.html").render(context),
        message_id=message_id("digest", digest_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug, "X-DearMP-Digest-Rows": str(len(entries))},
    )
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["name", "email", "address", "words", "comment", "own_letter"])
    for entry, row in zip(entries, rows, strict=True):
        cells = (row.name, row.email, row.address, entry.get("words") or "", row.comment)
        writer.writerow([_cell(v) for v in (*cells, row.own_letter)])
    msg.add_attachment(
        table.getvalue(), subtype="csv", filename=f"{campaign.slug}-{day.isoformat()}.csv"
    )
    return msg


# "Can't sign? Tell us" (services/intake/helprequests.py): the acknowledgement, the staff notice,
# a staff member's reply. The person's address is unconfirmed: nothing they typed goes to it.
def help_acknowledgement(
    request_id: UUID, campaign: Campaign, to: Addressee, settings: Settings
) -> EmailMessage:
    """To whoever asked for help: we have it, the team will reply (no word of their message)."""
    context = {"campaign_url": f"{settings.base_url}/c/{campaign.slug}"}
    return _to_unconfirmed("help_ack", request_id, campaign, to, settings, context)


def help_notice(
    once_per: UUID, campaign: Campaign, to: str, url: str, at: datetime, settings: Settings
) -> EmailMessage:
    """To an owner or editor of the campaign's organisation, in English: a help request waits
    at ``url`` (the staff page, where its message is read)."""
    when = format_datetime(at, "HH:mm 'on' d MMMM y", tzinfo=LONDON, locale="en_GB")
    context = {"title": campaign.title, "url": url, "when": when}
    text = _templates("en").get_template("help_notice.txt").make_module(context)
    return build_message(
        from_name="Dear MP",
        from_addr=f"hello@{settings.mail_domain}",
        to_name="",
        to_addr=to,
        subject=str(text.subject).strip(),  # type: ignore[attr-defined]
        text=str(text),
        message_id=message_id("help_notice", once_per, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )


def help_reply(
    reply_id: UUID,
    campaign: Campaign,
    to: Addressee,
    answer: str,
    organisation: str,
    reply_to: str | None,
    settings: Settings,
) -> EmailMessage:
    """A staff member's answer (``answer``, their words) with a footer in the person's language;
    From us (the mailer puts the organisation's sender name on it), Reply-To ``reply_to``."""
    context = {
        "campaign": campaign,
        "text": answer,
        "organisation": organisation,
        "reply_to": reply_to,
        "campaign_url": f"{settings.base_url}/c/{campaign.slug}",
    }
    text = _templates(to.language).get_template("help_reply.txt").make_module(context)
    return build_message(
        from_name="Dear MP",
        from_addr=f"hello@{settings.mail_domain}",
        to_name="",
        to_addr=to.email,
        reply_to=(organisation, reply_to) if reply_to else None,
        subject=str(text.subject).strip(),  # type: ignore[attr-defined]
        text=str(text),
        message_id=message_id("help_reply", reply_id, settings),
        headers={"X-DearMP-Campaign": campaign.slug},
    )
