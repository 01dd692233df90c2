"""Signing in and out of the staff pages."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from services.intake import ratelimit
from services.intake.admin import auth, throttle
from services.intake.admin.web import (
    checked_form,
    form_expired,
    no_store,
    render,
    safe_next,
    secure_cookies,
)
from services.intake.deps import Engine, Settings, client_ip

router = APIRouter(include_in_schema=False)

# The same words for a wrong email and a wrong password: the page must not tell anyone which
# accounts exist. Nor do the waits: they count the address typed, account or not.
REFUSED = (
    f"The email address or password is not right. After {throttle.PAIR_TIERS[0].count} wrong "
    "attempts for one address from one place, that place has to wait a few minutes before "
    "trying it again."
)
TOO_MANY_FROM_HERE = "Too many attempts from here. Try again later."


def wait_message(wait: throttle.Wait, now: datetime) -> str:
    minutes = wait.minutes(now)
    whom = "from here" if wait.whole_client else "for this address from here"
    return (
        f"Too many wrong passwords {whom}. Try again in {minutes} minute"
        f"{'' if minutes == 1 else 's'}. Elsewhere, the right password still works."
    )


@router.get("/admin/login")
def login_page(request: Request, engine: Engine, settings: Settings) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    with engine.connect() as conn:
        member = auth.session_member(conn, request.cookies.get(auth.COOKIE), settings.secret_key)
    if member is not None:
        return no_store(RedirectResponse(next_path, status_code=303))
    return render(request, settings, "login.html", next_path=next_path, values={})


@router.post("/admin/login")
async def login(request: Request, engine: Engine, settings: Settings) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    return await run_in_threadpool(_login, request, engine, settings, form)


def _login(request: Request, engine: Engine, settings: Settings, form: dict[str, str]) -> Response:
    next_path = safe_next(form.get("next"))
    email = form.get("email", "")[:320]
    client = client_ip(request)
    keys = throttle.LoginKeys.of(settings.secret_key, auth.normalise(email), client)
    now = datetime.now(UTC)
    refusal, status, cookie = REFUSED, 401, None
    with engine.begin() as conn:
        allowed = ratelimit.hit(
            conn,
            ratelimit.limit_key(settings.secret_key, "admin-login-ip", client),
            ratelimit.Limit.parse(settings.rate_limit_ip),
        )
        if not allowed:
            refusal, status = TOO_MANY_FROM_HERE, 429
        else:
            throttle.take_turn(conn, keys)
            wait = throttle.waiting(conn, keys, now)
            if wait is not None:
                refusal, status = wait_message(wait, now), 429
            elif (member := auth.authenticate(conn, email, form.get("password", ""))) is None:
                throttle.count_failure(conn, keys, now)
            else:
                throttle.forgive(conn, keys)
                cookie = auth.start_session(conn, member, settings.secret_key)
    if cookie is None:
        return render(
            request,
            settings,
            "login.html",
            status,
            next_path=next_path,
            values={"email": email},
            errors={"email": refusal},
        )
    response = RedirectResponse(next_path, status_code=303)
    auth.set_cookie(response, cookie, secure=secure_cookies(request, settings))
    return no_store(response)


@router.post("/admin/logout")
async def logout(request: Request, engine: Engine, settings: Settings) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    await run_in_threadpool(_end_session, engine, request.cookies.get(auth.COOKIE), settings)
    response = RedirectResponse("/admin/login", status_code=303)
    auth.clear_cookie(response)
    return no_store(response)


def _end_session(engine: Engine, cookie: str | None, settings: Settings) -> None:
    with engine.begin() as conn:
        auth.end_session(conn, cookie, settings.secret_key)
