"""``GET|POST /unsubscribe/{token}``: the link in every update email.

GET shows the subscriber's choices: leave this campaign's emails, leave every campaign's, or come
back. Each is a form POST with a CSRF token. A POST whose body is ``List-Unsubscribe=One-Click``
is a mail provider's one-click unsubscribe (RFC 8058): no cookie, no CSRF token; it leaves this
campaign, answers 200, and doing it again changes nothing.

The subscriber list belongs to the updates service, so intake does not touch it: it stages a
``subscription.changed`` event in the outbox, and the updates service applies it (in event-time
order, so a late event never undoes a newer choice).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from services.intake import csrf
from services.intake.deps import Engine, Settings
from services.intake.pages import form_page, page
from shared import outbox
from shared.campaigns import get_campaign
from shared.messages import SubscriptionChanged
from shared.tokens import InvalidToken
from shared.unsubscribe import Subscription, read_unsubscribe_token

router = APIRouter(include_in_schema=False)

ONE_CLICK = ("List-Unsubscribe", "One-Click")
# What each button asks for: (scope, subscribed).
CHOICES: dict[str, tuple[str, bool]] = {
    "campaign": ("campaign", False),
    "all": ("all", False),
    "resubscribe": ("campaign", True),
}


def _subscription(token: str, secret: str) -> Subscription | None:
    try:
        return read_unsubscribe_token(secret, token)
    except InvalidToken:
        return None


def _campaign_title(engine: Any, slug: str) -> str:
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
    return campaign.title if campaign is not None else slug


def _invalid(request: Request) -> HTMLResponse:
    return page(request, "unsubscribe_invalid.html", 400)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def preferences(token: str, request: Request, engine: Engine, settings: Settings) -> Response:
    found = _subscription(token, settings.secret_key)
    if found is None:
        return _invalid(request)
    return preferences_page(request, engine, settings, token, found)


def preferences_page(
    request: Request,
    engine: Any,
    settings: Any,
    token: str,
    found: Subscription,
    status: int = 200,
) -> Response:
    response = form_page(
        request,
        "unsubscribe.html",
        settings.secret_key,
        status,
        token=token,
        campaign_title=_campaign_title(engine, found.campaign),
        lang_path=f"/unsubscribe/{token}",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of Referer headers
    return response


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def change(token: str, request: Request, engine: Engine, settings: Settings) -> Response:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_change, token, request, engine, settings, fields)


def _change(
    token: str, request: Request, engine: Engine, settings: Settings, form: dict[str, str]
) -> Response:
    found = _subscription(token, settings.secret_key)
    if found is None:
        return _invalid(request)
    if form.get(ONE_CLICK[0]) == ONE_CLICK[1]:
        choice = "campaign"  # RFC 8058 one-click: no cookie or CSRF token to check
    else:
        if not csrf.valid(request, form.get("csrf_token"), settings.secret_key):
            return form_page(request, "form_expired.html", settings.secret_key, 400)
        choice = form.get("action", "")
        if choice not in CHOICES:
            return preferences_page(request, engine, settings, token, found, 400)
    scope, subscribed = CHOICES[choice]
    with engine.begin() as conn:
        outbox.add(
            conn,
            SubscriptionChanged(
                signature_id=found.signature_id,
                campaign=found.campaign,
                scope=scope,  # type: ignore[arg-type]
                subscribed=subscribed,
            ),
            correlation_id=found.signature_id,
        )
    response = page(
        request,
        "unsubscribe_done.html",
        200,
        choice=choice,
        token=token,
        campaign_title=_campaign_title(engine, found.campaign),
        lang_path=f"/unsubscribe/{token}",
    )
    response.headers["Cache-Control"] = "no-store"
    return response
