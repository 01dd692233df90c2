"""Signing in and out of the staff pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from services.intake import ratelimit
from services.intake.admin import auth
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

# The same words for a wrong email, a wrong password and a locked account: the page must not
# tell anyone which accounts exist.
REFUSED = (
    "The email address or password is not right, or the account is locked. After "
    f"{auth.MAX_FAILURES} wrong attempts an account is locked for "
    f"{int(auth.LOCKOUT.total_seconds() // 60)} minutes."
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
    with engine.begin() as conn:
        allowed = ratelimit.hit(
            conn,
            ratelimit.limit_key(settings.secret_key, "admin-login-ip", client),
            ratelimit.Limit.parse(settings.rate_limit_ip),
        )
        member = auth.authenticate(conn, email, form.get("password", "")) if allowed else None
        cookie = auth.start_session(conn, member, settings.secret_key) if member else None
    if cookie is None:
        errors = {"email": REFUSED if allowed else "Too many attempts from here. Try again later."}
        return render(
            request,
            settings,
            "login.html",
            401 if allowed else 429,
            next_path=next_path,
            values={"email": email},
            errors=errors,
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
