"""An organisation's staff accounts, managed by its owners at ``/admin/accounts``: the list, a
form to add an account (email, role, a first password the owner passes on), and a button to
remove one. An owner sees and changes only their organisation's accounts and cannot remove their
own; a platform operator sees every account and adds to any organisation."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake.admin.accounts import (
    AccountExists,
    StaffError,
    add_staff,
    list_staff,
    remove_staff,
)
from services.intake.admin.auth import StaffMember, password_problem
from services.intake.admin.roles import DESCRIPTIONS, ORGANISATION_ROLES, Power
from services.intake.admin.web import (
    NotFound,
    Staff,
    checked_form,
    form_expired,
    protected_router,
    render,
)
from services.intake.deps import Engine, Settings
from shared.config import Settings as SettingsModel
from shared.organisations import list_organisations

router = protected_router(reads=Power.ACCOUNTS, changes=Power.ACCOUNTS)
FIELDS = ("email", "role", "organisation", "password")


def accounts_view(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    status: int = 200,
    **extra: object,
) -> HTMLResponse:
    with engine.connect() as conn:
        accounts = list_staff(conn, member.organisation)
        organisations = list_organisations(conn) if member.organisation is None else []
    extra.setdefault("values", {})
    return render(
        request,
        settings,
        "accounts.html",
        status,
        accounts=accounts,
        organisations=organisations,
        roles={r.value: DESCRIPTIONS[r] for r in ORGANISATION_ROLES},
        member=member,
        **extra,
    )


@router.get("/admin/accounts", response_class=HTMLResponse)
def accounts_page(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> HTMLResponse:
    notice = None
    # Flags, not addresses: a link cannot make this page say something it did not do.
    if request.query_params.get("added") == "1":
        notice = "The account is added. Give its password to its owner another way than email."
    elif request.query_params.get("removed") == "1":
        notice = "The account is removed, and its sessions have ended."
    return accounts_view(request, engine, settings, member, notice=notice)


@router.post("/admin/accounts")
async def add_account(
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
    values = {k: form.get(k, "").strip()[:320] for k in FIELDS if k != "password"}
    password = form.get("password", "")
    errors: dict[str, str] = {}
    if "@" not in values["email"].strip("@"):
        errors["email"] = "Enter their email address, like name@example.org"
    if values["role"] not in ORGANISATION_ROLES:
        errors["role"] = "Choose what the account may do"
    # An owner adds to their own organisation, whatever the form says.
    organisation = member.organisation or values["organisation"]
    if not organisation:
        errors["organisation"] = "Choose the organisation"
    if problem := password_problem(password):
        errors["password"] = problem[0].upper() + problem[1:]
    if not errors:
        try:
            add_staff(
                engine, values["email"], password, organisation=organisation, role=values["role"]
            )
        except AccountExists:  # in this organisation: its list shows it
            errors["email"] = f"That address already has an account in {organisation}"
        except StaffError as exc:
            field = "organisation" if "organisation" in str(exc) else "email"
            errors[field] = str(exc)[0].upper() + str(exc)[1:]
    if errors:
        return accounts_view(request, engine, settings, member, 400, values=values, errors=errors)
    return RedirectResponse("/admin/accounts?added=1", status_code=303)


@router.post("/admin/accounts/{account_id}/remove")
async def remove_account(
    account_id: int, request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    if await checked_form(request, settings) is None:
        return form_expired(request, settings)
    if account_id == member.id:
        return accounts_view(
            request,
            engine,
            settings,
            member,
            400,
            notice="You cannot remove your own account. Ask another owner or an operator.",
        )
    try:
        removed = await run_in_threadpool(_remove, engine, account_id, member.organisation)
    except StaffError as exc:  # the organisation's last owner
        return accounts_view(request, engine, settings, member, 400, notice=f"{exc}.")
    if removed is None:
        raise NotFound()  # not an account of this organisation (or already removed)
    return RedirectResponse("/admin/accounts?removed=1", status_code=303)


def _remove(engine: Engine, account_id: int, organisation: str | None) -> str | None:
    if not -(2**63) <= account_id < 2**63:
        return None
    with engine.begin() as conn:
        return remove_staff(conn, account_id=account_id, organisation=organisation)
