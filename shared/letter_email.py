"""The letter as an email to its target, built one way for everyone who needs it: the mailer
sends it (``services.mailer.compose.letter``) and the staff preview shows it
(``services.intake.admin.preview``), so what the preview shows is what goes.

The envelope: From "<supporter> via Dear MP" at our letters@ address (never the supporter's own
address: DMARC), To the target, Reply-To the supporter. Under the letter, in both parts, the
office footer (``shared.letters.office_footer``): on whose behalf it came, how to answer them,
how to reach us.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

from shared.campaigns import Campaign
from shared.letters import RenderedLetter, office_footer, operator_address
from shared.mail import build_message, via_name
from shared.messages import Supporter, Target
from shared.organisations import Brand

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def with_footer_html(html: str, footer_html: str) -> str:
    """``footer_html`` at the end of ``html``: inside its body when it is a whole document."""
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return f"{html.rstrip()}\n{footer_html}"
    at = ends[-1].start()
    return f"{html[:at]}{footer_html}{html[at:]}"


def running_organisation(brand: Brand | None) -> str | None:
    """Who runs the campaign, as the office footer names them (``shared.organisations.brand_for``
    or ``cached_brand``); None for the platform's own campaigns or one not saved yet."""
    return None if brand is None or brand.platform else brand.name


def letter_email(
    campaign: Campaign,
    supporter: Supporter,
    to: Target,
    rendered: RenderedLetter,
    *,
    message_id: str,
    mail_domain: str,
    operator_contact: str,
    organisation: str | None = None,
) -> EmailMessage:
    """The letter in ``supporter``'s name to ``to``, with the office footer."""
    footer = office_footer(
        campaign.title,
        operator_address(operator_contact, mail_domain),
        constituent=(supporter.full_name, supporter.email),
        organisation=organisation,
    )
    return build_message(
        from_name=via_name(supporter.full_name),
        from_addr=f"letters@{mail_domain}",
        to_name=to.name,
        to_addr=to.email or "",
        reply_to=(supporter.full_name, supporter.email),
        subject=rendered.subject,
        text=f"{rendered.text.rstrip()}\n\n{footer.text}",
        html=with_footer_html(rendered.html, footer.html) if rendered.html else None,
        message_id=message_id,
        headers={"X-DearMP-Campaign": campaign.slug},
    )
