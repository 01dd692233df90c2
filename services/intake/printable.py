"""``GET /thanks/{token}/letter.pdf``: the supporter's letter ready to print and post, when their
MP publishes no email address (the signature is *unresolvable* with reason ``no_contact``, and
the resolver kept the MP's name and seat).

``token`` is the thank-you page's own (purpose ``thanks``, ``shared.tokens``; the same expiry);
the "we could not send it" email links here too. The PDF (weasyprint) is an A4 letter: the
supporter's name and address, the date, the MP at the House of Commons, then the campaign's
letter written for them as the mailer would have sent it (``shared.letters.render_letter``).
Any other signature (sent, waiting, erased, another reason) gets "page not found": nothing
personal is served for it. The PDF is built on each request and never stored. Where weasyprint
cannot run (its system libraries missing), the same letter is served as a page with print
styles instead.
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from services.intake.deps import Engine, Settings
from services.intake.models import signatures
from services.intake.pages import page
from services.intake.signing import supporter_of
from shared.campaigns import get_campaign
from shared.letters import TemplateProblem, render_letter
from shared.logging import get_logger
from shared.messages import Target
from shared.states import SignatureStatus
from shared.tokens import THANKS, InvalidToken, read_token

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)
NO_EMAIL = "no_contact"  # the resolver's reason: the MP publishes no email address
# Where any MP can be written to by post (www.parliament.uk: "Contact your MP").
HOUSE_OF_COMMONS = ("House of Commons", "London", "SW1A 0AA")
# Not a page of the site: the letter in the campaign's language (English), never translated.
TEMPLATE = Path(__file__).parent / "templates" / "print" / "letter.html"


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8"))


def _signature_id(token: str, secret: str) -> uuid.UUID | str:
    try:
        return uuid.UUID(read_token(secret, THANKS, token))
    except InvalidToken as exc:
        return exc.reason
    except ValueError:
        return "invalid"


def printable_html(engine: Any, signature_id: uuid.UUID) -> tuple[str, str] | None:
    """The letter as a printable page, and the MP's name; None when there is none to print."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(signatures).where(signatures.c.id == signature_id)).first()
        if (
            row is None
            or row.supporter_key is None  # erased
            or row.status != SignatureStatus.UNRESOLVABLE
            or row.unresolvable_reason != NO_EMAIL
            or not row.target_name
        ):
            return None
        campaign = get_campaign(conn, row.campaign)
    if campaign is None:
        return None
    supporter = supporter_of(row)
    try:
        letter = render_letter(campaign, supporter, Target(name=row.target_name, kind="mp"))
    except TemplateProblem:
        return None
    html = _template().render(
        supporter=supporter,
        address=[*supporter.address_lines, supporter.postcode],
        mp=row.target_name,
        constituency=row.constituency_name or "",
        parliament=HOUSE_OF_COMMONS,
        date=format_date(row.created_at, format="long", locale="en_GB"),
        subject=letter.subject,
        paragraphs=[p.strip() for p in re.split(r"\n\s*\n", letter.text) if p.strip()],
    )
    return html, row.target_name


def pdf_of(html: str) -> bytes:
    from weasyprint import HTML  # heavy: loaded on the first letter, not at start-up

    return bytes(HTML(string=html).write_pdf())


def _letter_pdf(engine: Any, signature_id: uuid.UUID) -> tuple[bytes, str, str] | None:
    """(the body, its media type, the MP's name): the PDF, or, where weasyprint cannot run
    (its system libraries, pango, missing), the same letter as a page to print from the
    browser: the supporter still gets their letter, never an error."""
    found = printable_html(engine, signature_id)
    if found is None:
        return None
    html, mp = found
    try:
        return pdf_of(html), "application/pdf", mp
    except (OSError, ImportError) as exc:
        log.warning("PDF unavailable: the letter served as a page", error=type(exc).__name__)
        return html.encode(), "text/html; charset=utf-8", mp


@router.get("/thanks/{token}/letter.pdf")
async def letter_pdf(token: str, request: Request, engine: Engine, settings: Settings) -> Response:
    found = _signature_id(token, settings.secret_key)
    if isinstance(found, str):
        return page(request, "confirm_invalid.html", 400, reason=found, link="thanks")
    made = await run_in_threadpool(_letter_pdf, engine, found)
    if made is None:
        response: Response = page(request, "not_found.html", 404)
    else:
        body, media_type, mp = made
        response = Response(body, media_type=media_type)
        if media_type == "application/pdf":
            name = re.sub(r"[^A-Za-z0-9]+", "-", mp).strip("-").lower() or "your-mp"
            response.headers["Content-Disposition"] = f'inline; filename="letter-to-{name}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of Referer headers
    response.headers["X-Robots-Tag"] = "noindex"
    return response
