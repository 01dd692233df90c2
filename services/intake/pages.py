"""Server-rendered pages: the campaign page and the confirmation flow."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.intake.deps import Engine, Settings
from services.intake.models import signatures
from services.intake.signing import confirm_signature
from shared.campaigns import get_campaign
from shared.tokens import InvalidToken, read_token

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


@router.get("/c/{slug}", response_class=HTMLResponse)
def campaign_page(slug: str, request: Request, engine: Engine) -> HTMLResponse:
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
        if campaign is None:
            return page(request, "not_found.html", 404)
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(signatures)
            .where(signatures.c.campaign == slug, signatures.c.status != "pending")
        ).scalar_one()
    return page(request, "campaign.html", campaign=campaign, count=count)


def _signature_from(token: str, settings_secret: str) -> uuid.UUID | str:
    try:
        return uuid.UUID(read_token(settings_secret, "confirm", token))
    except InvalidToken as exc:
        return exc.reason
    except ValueError:
        return "invalid"


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(token: str, request: Request, settings: Settings) -> HTMLResponse:
    """Show a button; only the POST confirms (mail scanners follow links, people press buttons)."""
    found = _signature_from(token, settings.secret_key)
    if isinstance(found, str):
        return page(request, "confirm_invalid.html", 400, reason=found)
    return page(request, "confirm.html", token=token)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request, engine: Engine, settings: Settings) -> HTMLResponse:
    found = _signature_from(token, settings.secret_key)
    if isinstance(found, str):
        return page(request, "confirm_invalid.html", 400, reason=found)
    with engine.begin() as conn:
        row = confirm_signature(conn, found)
        if row is None:
            return page(request, "confirm_invalid.html", 400, reason="invalid")
        campaign = get_campaign(conn, row.campaign)
    return page(request, "thanks.html", campaign=campaign)
