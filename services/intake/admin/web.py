"""What every staff page shares: the login requirement, who may see what, rendering, and
CSRF-checked forms.

Every route on a ``protected_router`` depends on ``current_staff``: without a valid session a GET
is redirected to ``/admin/login?next=…`` and anything else to the login page, before the route
runs, so no data is read. Then ``guard`` checks, before the route runs too:

- a ``{slug}`` in the path must be a campaign of the account's organisation (operators: any),
  else the page is "not found", exactly as for a campaign that does not exist: an organisation's
  staff cannot tell another's campaigns from missing ones;
- the account's role must have the router's power for reading (GET, HEAD) or for changing
  (anything else): a viewer changes nothing. A page for platform operators only is "not found"
  to everyone else; another power missing is a 403 that says what the role allows.

Routes that list things filter by ``member.organisation`` themselves (``queries``, ``access``).
Staff pages are English only, never cached, and may not be framed.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake import csrf, i18n
from services.intake.admin.auth import COOKIE, StaffMember, session_member
from services.intake.admin.failures import letter_problems
from services.intake.admin.roles import DESCRIPTIONS, Power, Role
from services.intake.deps import Engine, Settings
from shared.organisations import organisation_of


class LoginRequired(Exception):
    def __init__(self, next_path: str | None):
        self.next_path = next_path


class NotFound(Exception):
    """Nothing here for this account: answered as the staff pages' "Page not found" (404)."""


class Forbidden(Exception):
    """The account's role may not do this (403), in its organisation."""


def safe_next(value: str | None) -> str:
    """Where to go after login: only a page of this site under /admin (no open redirect)."""
    if not value:
        return "/admin"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value or not value.startswith("/admin"):
        return "/admin"
    if value.startswith("/admin/login") or value.startswith("/admin/logout"):
        return "/admin"
    return value


def login_url(next_path: str | None) -> str:
    return f"/admin/login?next={quote(next_path, safe='/')}" if next_path else "/admin/login"


def current_staff(request: Request, engine: Engine, settings: Settings) -> StaffMember:
    with engine.connect() as conn:
        member = session_member(conn, request.cookies.get(COOKIE), settings.secret_key)
    if member is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method in ("GET", "HEAD") else None)
    request.state.staff = member
    return member


Staff = Annotated[StaffMember, Depends(current_staff)]


async def login_required(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    response = RedirectResponse(login_url(exc.next_path), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def campaign_visible(engine: Any, member: StaffMember, slug: str) -> bool:
    """Whether the account may see the campaign (a missing campaign is its route's 404)."""
    if member.organisation is None:
        return True
    with engine.connect() as conn:
        return organisation_of(conn, slug) == member.organisation


def guard(reads: Power, changes: Power) -> Any:
    """The dependency of a protected router: its campaign in the account's organisation, and
    the power to read (GET, HEAD) or to change (any other method)."""

    def allowed(request: Request, engine: Engine, member: Staff) -> StaffMember:
        slug = request.path_params.get("slug")
        if slug is not None and not campaign_visible(engine, member, str(slug)):
            raise NotFound()
        needed = reads if request.method in ("GET", "HEAD") else changes
        if not member.can(needed):
            raise NotFound() if needed is Power.PLATFORM else Forbidden()
        return member

    return allowed


def protected_router(*, reads: Power = Power.READ, changes: Power = Power.EDIT) -> APIRouter:
    """A router for staff pages: every route needs a session, and ``guard``'s checks."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(guard(reads, changes))])


async def not_found(request: Request, _exc: Exception) -> Response:
    return render(request, request.app.state.settings, "not_found.html", 404)


async def forbidden(request: Request, _exc: Exception) -> Response:
    member = getattr(request.state, "staff", None)
    role = DESCRIPTIONS.get(Role(member.role)) if member else None
    return render(request, request.app.state.settings, "forbidden.html", 403, role=role)


def secure_cookies(request: Request, settings: Any) -> bool:
    return request.url.scheme == "https" or str(settings.base_url).startswith("https://")


def render(
    request: Request, settings: Any, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A staff page; it carries a CSRF token for its forms (logout is one on every page)."""
    cookie, token = csrf.issue(request, settings.secret_key)
    context.setdefault("errors", {})
    context.setdefault("staff", getattr(request.state, "staff", None))
    if "letter_problems" not in context:  # the banner: letters that could not be written
        context["letter_problems"] = letter_problems(request.app.state.engine, context["staff"])
    template = i18n.environment("en").get_template(f"admin/{name}")
    response = HTMLResponse(
        template.render(request=request, csrf_token=token, **context), status_code=status
    )
    csrf.set_cookie(response, cookie, secure=secure_cookies(request, settings))
    no_store(response)
    return response


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def checked_form(request: Request, settings: Any) -> dict[str, str] | None:
    """The posted form if its CSRF token is valid, else None."""
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    if not csrf.valid(request, values.get(csrf.FIELD), settings.secret_key):
        return None
    return values


def form_expired(request: Request, settings: Any) -> HTMLResponse:
    return render(request, settings, "form_expired.html", 400)
