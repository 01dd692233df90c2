"""What a campaign will look like before anyone signs: the letter exactly as its target would
receive it (From, To, Reply-To, Subject, the text and HTML parts), written for a sample
supporter at a postcode the editor types, and the public campaign page.

The MP for the sample postcode comes from the reference tables the resolver's local look-up
reads (``dearmp data import-*``, or the demo data of ``make run``): intake may read reference
data, never ask the resolver. When those tables do not know the postcode (or it has no MP
there), the letter is written to a placeholder MP and the page says so. The letter is rendered
by ``shared.letters.render_letter`` and built by ``shared.letter_email.letter_email`` (the office
footer included), as the mailer does, so what the preview shows is what goes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import postcodes
from shared.campaigns import Campaign
from shared.letter_email import letter_email, running_organisation
from shared.letters import RenderedLetter, render_letter
from shared.messages import Supporter, Target
from shared.organisations import brand_for
from shared.reference import constituencies, mps
from shared.reference import postcodes as postcode_table

SAMPLE_POSTCODE = "SW1A 1AA"
PLACEHOLDER_MP = "[your MP's name]"


@dataclass(frozen=True)
class Sent:
    """One email of the preview, as it would go."""

    to: str  # who receives it, in words
    message: EmailMessage
    letter: RenderedLetter

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    @property
    def text(self) -> str:
        """The plain-text part as it goes: the letter and the office footer."""
        return str(self.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]

    @property
    def html(self) -> str | None:
        """The HTML part as it goes, if the campaign's letter has one."""
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else None


@dataclass(frozen=True)
class LetterPreview:
    postcode: str
    note: str  # how the target was found, or why a placeholder stands in
    emails: list[Sent]


def sample_supporter(postcode: str) -> Supporter:
    return Supporter(
        first_name="Sam",
        last_name="Sample",
        email="sam.sample@example.org",
        postcode=postcode,
        address_lines=["1 Sample Street", "Sampletown"],
        comment="",
    )


def mp_for(conn: Connection, postcode: str) -> tuple[Target | None, str]:
    """The sample postcode's MP from the reference tables, and a sentence saying how it was
    found or why there is none."""
    if not postcodes.is_valid(postcode):
        return None, f"“{postcode}” is not a UK postcode, so the letter is to a placeholder MP."
    if postcodes.no_westminster_mp(postcode):
        return None, f"{postcode} has no MP at Westminster, so the letter is to a placeholder MP."
    row = conn.execute(
        sa.select(constituencies.c.name.label("seat"), mps.c.name, mps.c.email, mps.c.party)
        .select_from(
            postcode_table.join(
                constituencies, constituencies.c.code == postcode_table.c.constituency_code
            ).outerjoin(mps, mps.c.constituency_code == postcode_table.c.constituency_code)
        )
        .where(postcode_table.c.postcode == postcode)
    ).first()
    if row is None:
        return None, (
            f"{postcode} is not in the postcode data loaded here, so the letter is to a "
            "placeholder MP. Supporters' letters go to their own MP, found when they confirm."
        )
    if not row.name or not row.email:
        return None, (
            f"{postcode} is in {row.seat}, which has no MP with an email address in the data "
            "loaded here, so the letter is to a placeholder MP."
        )
    found = Target(name=row.name, email=row.email, party=row.party, kind="mp")
    return found, f"{postcode} is in {row.seat}: the letter is to its MP, {row.name}."


def preview_letters(
    conn: Connection,
    campaign: Campaign,
    postcode_typed: str,
    mail_domain: str,
    operator_contact: str = "",
) -> LetterPreview:
    """The emails a signature at ``postcode_typed`` would send to the campaign's target(s).
    ``operator_contact``: ``DEARMP_OPERATOR_CONTACT``, named in the letter's footer."""
    postcode = postcodes.normalise(postcode_typed or SAMPLE_POSTCODE)
    supporter = sample_supporter(postcode)
    spec = campaign.target
    fixed = Target(name=spec.name or "", email=spec.email, kind="fixed")
    if spec.kind == "fixed":
        target, note = fixed, f"Every letter goes to {fixed.name}."
    else:
        found, note = mp_for(conn, postcode)
        target = found or Target(name=PLACEHOLDER_MP, email="mp@placeholder.invalid")
    rendered = render_letter(campaign, supporter, target)
    runs = running_organisation(brand_for(conn, campaign.slug)) if conn is not None else None
    emails = [
        Sent(
            _named(target),
            _email(campaign, supporter, target, rendered, mail_domain, operator_contact, runs),
            rendered,
        )
    ]
    if spec.kind == "both":
        copy = _email(
            campaign, supporter, fixed, rendered, mail_domain, operator_contact, runs, "fixed_copy"
        )
        emails.append(Sent(f"{_named(fixed)}: a copy of the same letter", copy, rendered))
        note += f" A copy of the letter goes to {fixed.name}."
    return LetterPreview(postcode, note, emails)


def _named(target: Target) -> str:
    return f"{target.name} <{target.email}>" if target.email else target.name


def _email(
    campaign: Campaign,
    supporter: Supporter,
    to: Target,
    rendered: RenderedLetter,
    mail_domain: str,
    operator_contact: str,
    organisation: str | None,
    purpose: str = "letter",
) -> EmailMessage:
    """Built by ``shared.letter_email.letter_email``, as the mailer builds it."""
    return letter_email(
        campaign,
        supporter,
        to,
        rendered,
        message_id=f"<{purpose}.{uuid.uuid4()}@{mail_domain}>",
        mail_domain=mail_domain,
        operator_contact=operator_contact,
        organisation=organisation,
    )
