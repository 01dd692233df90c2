"""An organisation's webhooks, managed by its owners at ``/admin/webhooks``: its endpoints (add
one: its secret is shown once, on the page that answers the form; remove one), their latest
deliveries and the failure log. An owner sees and changes only their organisation's; a platform
operator sees every organisation's and adds to any. Bodies (names, addresses) are never shown."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake.admin.auth import StaffMember
from services.intake.admin.roles import Power
from services.intake.admin.web import (
    NotFound,
    Staff,
    checked_form,
    form_expired,
    protected_router,
    render,
)
from services.intake.deps import Engine, Settings
from services.updates.reports import webhook_activity
from shared.config import Settings as SettingsModel
from shared.organisations import list_organisations
from shared.webhooks import WebhookError, add_endpoint, list_endpoints, remove_endpoint

router = protected_router(reads=Power.ACCOUNTS, changes=Power.ACCOUNTS)


def webhooks_view(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    status: int = 200,
    **extra: object,
) -> HTMLResponse:
    with engine.connect() as conn:
        endpoints = list_endpoints(conn, member.organisation)
        activity = webhook_activity(conn, member.organisation)
        organisations = list_organisations(conn) if member.organisation is None else []
    extra.setdefault("values", {})
    return render(
        request,
        settings,
        "webhooks.html",
        status,
        endpoints=endpoints,
        activity=activity,
        organisations=organisations,
        member=member,
        **extra,
    )


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> HTMLResponse:
    notice = None
    if request.query_params.get("removed") == "1":  # a flag: a link cannot make it say more
        notice = "The endpoint is removed; nothing more goes to it."
    return webhooks_view(request, engine, settings, member, notice=notice)


@router.post("/admin/webhooks")
async def add_webhook(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    return await run_in_threadpool(_add, request, engine, settings, member, form)


def _add(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    form: dict[str, str],
) -> Response:
    values = {k: form.get(k, "").strip()[:2000] for k in ("url", "organisation")}
    # An owner adds to their own organisation, whatever the form says.
    organisation = member.organisation or values["organisation"]
    errors: dict[str, str] = {}
    if not organisation:
        errors["organisation"] = "Choose the organisation"
    else:
        try:
            with engine.begin() as conn:
                endpoint, secret = add_endpoint(
                    conn,
                    organisation,
                    values["url"],
                    allow_http_localhost=settings.webhooks_allow_http_localhost,
                )
        except WebhookError as exc:
            field = "organisation" if "organisation" in str(exc) else "url"
            errors[field] = str(exc)[0].upper() + str(exc)[1:]
    if errors:
        return webhooks_view(request, engine, settings, member, 400, values=values, errors=errors)
    # Answered here, not after a redirect: the secret is on this page only, once.
    return webhooks_view(request, engine, settings, member, added=endpoint, secret=secret)


@router.post("/admin/webhooks/{endpoint_id}/remove")
async def remove_webhook(
    endpoint_id: int, request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    if await checked_form(request, settings) is None:
        return form_expired(request, settings)
    if not await run_in_threadpool(_remove, engine, endpoint_id, member.organisation):
        raise NotFound()  # not an endpoint of this organisation (or already removed)
    return RedirectResponse("/admin/webhooks?removed=1", status_code=303)


def _remove(engine: Engine, endpoint_id: int, organisation: str | None) -> bool:
    with engine.begin() as conn:
        return remove_endpoint(conn, endpoint_id, organisation)
