"""Campaigns from the staff pages: create, edit, preview, open, pause and close, every version
kept, and YAML in and out.

Editors and owners of the campaign's organisation (and platform operators) change; viewers
read (the preview, the versions, the YAML). A campaign made by an organisation's account
belongs to that organisation. Every save goes through ``shared.campaigns.save_campaign``, as
``dearmp campaigns load`` does: a changed definition is a new version, the earlier ones stay
(``campaign_versions``), and the mailer records with each letter the version it was written
from, so an edit never changes what a letter already sent said.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection
from starlette.datastructures import UploadFile

from services.intake import csrf
from services.intake.admin import campaign_form, versions
from services.intake.admin.auth import StaffMember
from services.intake.admin.preview import SAMPLE_POSTCODE, preview_letters
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
from services.intake.pages import render_campaign
from shared.campaigns import (
    Campaign,
    CampaignError,
    campaign_yaml,
    get_campaign,
    read_campaign_yaml,
    save_campaign,
)
from shared.config import Settings as SettingsModel
from shared.organisations import get_organisation, list_organisations, organisation_of
from shared.reference import campaigns

router = protected_router()  # a campaign: viewers read, editors change
editing = protected_router(reads=Power.EDIT)  # the forms themselves: editors only
routers = [editing, router]
YAML_MAX = 200_000  # bytes: a campaign file is a few kilobytes
NEW = {"target_kind": "mp", "goal": "1000", "language": "en", "privacy_url": "/privacy"}


def editor_view(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    *,
    slug: str | None,
    values: dict[str, str],
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    with engine.connect() as conn:
        organisations = list_organisations(conn) if member.organisation is None else []
    return render(
        request,
        settings,
        "campaign_edit.html",
        status,
        slug=slug,
        values=values,
        labels=campaign_form.LABELS,
        organisations=organisations,
        member=member,
        **extra,
    )


@editing.get("/admin/campaigns/new", response_class=HTMLResponse)
def new_campaign(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> HTMLResponse:
    return editor_view(request, engine, settings, member, slug=None, values=dict(NEW))


@editing.post("/admin/campaigns/new")
async def create_campaign(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    return await run_in_threadpool(_submit, request, engine, settings, member, form, None)


@editing.get("/admin/c/{slug}/edit", response_class=HTMLResponse)
def edit_campaign(
    slug: str, request: Request, engine: Engine, settings: Settings, member: Staff
) -> HTMLResponse:
    campaign = _stored(engine, slug)
    values = {**campaign_form.values_of(campaign), "version": str(campaign.version)}
    return editor_view(request, engine, settings, member, slug=slug, values=values)


@editing.post("/admin/c/{slug}/edit")
async def save_edit(
    slug: str, request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    return await run_in_threadpool(_submit, request, engine, settings, member, form, slug)


def _stored(engine: Engine, slug: str) -> Campaign:
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
    if campaign is None:
        raise NotFound()
    return campaign


def _submit(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    form: dict[str, str],
    slug: str | None,
) -> Response:
    """Preview (anything but ``action=save``) or save the form; with errors, nothing changes."""
    current = _stored(engine, slug) if slug else None
    result = campaign_form.checked(
        form, slug=slug, switched_on=current.switched_on if current else False
    )
    values = {**result.values, "version": form.get("version", ""), "postcode": _postcode(form)}
    organisation = member.organisation or form.get("organisation", "")
    values["organisation"] = organisation
    errors = dict(result.errors)
    if slug is None and not organisation:
        errors["organisation"] = "Organisation: choose the organisation that runs it"

    def show(status: int = 200, **extra: Any) -> HTMLResponse:
        return editor_view(
            request, engine, settings, member, slug=slug, values=values, status=status, **extra
        )

    if errors or result.campaign is None:
        return show(400, errors=errors)
    campaign = result.campaign
    if form.get("action") != "save":
        return show(**_previews(request, engine, settings, campaign, values, organisation))
    try:
        with engine.begin() as conn:
            problem = _conflict(conn, campaign.slug, slug, form.get("version", ""))
            if problem:
                errors[problem[0]] = problem[1]
            else:
                owned = campaign.model_copy(update={"organisation": organisation or None})
                version = save_campaign(conn, owned, saved_by=member.email, new=slug is None)
    except CampaignError as exc:  # an organisation that does not exist, or an address taken
        where, what = str(exc).split(": ", 2)[1:]
        field = campaign_form.field_of(where)
        errors[field] = f"{campaign_form.LABELS[field]}: {what}"
    if errors:
        return show(400, errors=errors)
    return RedirectResponse(f"/admin/c/{campaign.slug}?saved={version}", status_code=303)


def _conflict(
    conn: Connection, new_slug: str, slug: str | None, version: str
) -> tuple[str, str] | None:
    """Why the form cannot be saved over what is stored now: a new campaign's address is
    taken, or someone saved the campaign since this form was opened."""
    stored = conn.execute(
        sa.select(campaigns.c.version).where(campaigns.c.slug == new_slug).with_for_update()
    ).scalar()
    if slug is None:
        if stored is not None:
            return "slug", f"Address: there is already a campaign at /c/{new_slug}; choose another"
        return None
    if stored is not None and version != str(stored):
        return "title", (
            f"Someone saved this campaign (version {stored}) since you opened it: nothing is "
            "saved. Open it again to see their changes, then make yours."
        )
    return None


def _postcode(form: dict[str, str]) -> str:
    return form.get("postcode", "").strip()[:16]


def _previews(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    campaign: Campaign,
    values: dict[str, str],
    organisation: str | None = None,
) -> dict[str, Any]:
    """The letter for the sample postcode and the public page, for the preview section.
    ``organisation``: the one that runs (or will run) it; None: the stored campaign's."""
    postcode = values.get("postcode") or SAMPLE_POSTCODE
    letter_problem = None
    letters = None
    with engine.connect() as conn:
        org = get_organisation(conn, organisation or organisation_of(conn, campaign.slug) or "")
    opt_in = (org.name, org.list_opt_in) if org and org.list_opt_in else None
    try:
        with engine.connect() as conn:
            letters = preview_letters(
                conn, campaign, postcode, settings.mail_domain, settings.operator_contact
            )
    except Exception as exc:  # noqa: BLE001 - a template that cannot be rendered: say why
        letter_problem = f"{type(exc).__name__}: {exc}"[:500]
    # The page as supporters see it while it takes signatures, form included: a new campaign
    # is saved paused, and a paused page has no form to preview.
    taking = campaign.model_copy(update={"open": True, "opens_at": None})
    shown = taking if taking.status() == "open" else campaign
    try:
        page = bytes(
            render_campaign(request, engine, settings, shown, org_opt_in=opt_in).body
        ).decode()
        start, end = page.find("<main"), page.rfind("</main>")
        public_page = page[page.find(">", start) + 1 : end] if start >= 0 < end else ""
    except Exception as exc:  # noqa: BLE001 - shown instead of the page
        public_page, letter_problem = "", letter_problem or f"{type(exc).__name__}: {exc}"[:500]
    return {
        "preview": letters,
        "letter_problem": letter_problem,
        "public_page": public_page,
        "status_now": campaign.status(),
    }


@router.get("/admin/c/{slug}/preview", response_class=HTMLResponse)
def preview_page(
    slug: str, request: Request, engine: Engine, settings: Settings, member: Staff
) -> HTMLResponse:
    """The saved campaign's letter for a sample postcode (``?postcode=``) and its public page."""
    campaign = _stored(engine, slug)
    values = {"postcode": request.query_params.get("postcode", "").strip()[:16]}
    return render(
        request,
        settings,
        "campaign_preview_page.html",
        campaign=campaign,
        values=values,
        **_previews(request, engine, settings, campaign, values),
    )


@router.post("/admin/c/{slug}/status")
async def change_status(
    slug: str, request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    """``action``: open (now: a later opening date and a past closing date are cleared),
    pause (stops taking signatures until opened again), close (closes now)."""
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    action = form.get("action", "")
    if action not in versions.ACTIONS:
        return RedirectResponse(f"/admin/c/{slug}", status_code=303)
    return await run_in_threadpool(_change_status, request, engine, settings, member, slug, action)


def _change_status(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    slug: str,
    action: str,
) -> Response:
    with engine.begin() as conn:
        campaign = get_campaign(conn, slug)
        if campaign is None:
            raise NotFound()
        try:
            changed = versions.with_status(campaign, action)
            # Opening it writes its letter for the sample supporters again (CampaignError).
            save_campaign(conn, changed, saved_by=member.email)
        except ValueError as exc:  # CampaignError too
            problem = str(exc).split(": ", 1)[-1] if isinstance(exc, CampaignError) else exc
            return render(
                request, settings, "campaign_problem.html", 400, campaign=campaign, problem=problem
            )
    return RedirectResponse(f"/admin/c/{slug}?status={action}", status_code=303)


@router.get("/admin/c/{slug}/campaign.yaml")
def download_yaml(slug: str, engine: Engine) -> Response:
    """The campaign as a file ``dearmp campaigns load`` (or the upload) reads back."""
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
        organisation = conn.execute(
            sa.select(campaigns.c.organisation).where(campaigns.c.slug == slug)
        ).scalar()
    if campaign is None:
        raise NotFound()
    return Response(
        campaign_yaml(campaign, organisation),
        media_type="application/yaml; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{slug}.yaml"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/admin/c/{slug}/versions", response_class=HTMLResponse)
def versions_page(slug: str, request: Request, engine: Engine, settings: Settings) -> HTMLResponse:
    """Every saved version, how many letters went with each, and (``?v=N``) one version's
    letter as it was."""
    campaign = _stored(engine, slug)
    wanted = request.query_params.get("v", "")
    with engine.connect() as conn:
        found = versions.history(conn, slug)
        shown = (
            versions.one(conn, slug, int(wanted)) if wanted.isdigit() and len(wanted) < 9 else None
        )
    return render(
        request, settings, "campaign_versions.html", campaign=campaign, versions=found, shown=shown
    )


@editing.post("/admin/campaigns/import")
async def import_yaml(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    """A campaign file, uploaded: checked as ``dearmp campaigns load`` checks it. A new
    campaign goes to the account's organisation; an existing one only if it is theirs."""
    form = await request.form()
    token = form.get(csrf.FIELD)
    if not isinstance(token, str) or not csrf.valid(request, token, settings.secret_key):
        return form_expired(request, settings)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_problem(request, settings, "Choose a campaign file (.yaml) to upload")
    data = await upload.read(YAML_MAX + 1)
    if len(data) > YAML_MAX:
        return _import_problem(request, settings, "The file is too big for a campaign file")
    name = (upload.filename or "campaign.yaml").rsplit("/", 1)[-1][:100]
    try:
        campaign = read_campaign_yaml(data.decode("utf-8"), name)
    except UnicodeDecodeError:
        return _import_problem(request, settings, f"{name}: the file is not UTF-8 text")
    except CampaignError as exc:
        return _import_problem(request, settings, str(exc))
    return await run_in_threadpool(_import, request, engine, settings, member, campaign, name)


def _import(
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    campaign: Campaign,
    name: str,
) -> Response:
    own = member.organisation
    if own is not None and campaign.organisation not in (None, own):
        return _import_problem(
            request, settings, f"{name}: organisation: you can only add campaigns of {own}"
        )
    try:
        with engine.begin() as conn:
            holder = conn.execute(
                sa.select(campaigns.c.organisation)
                .where(campaigns.c.slug == campaign.slug)
                .with_for_update()
            ).scalar()
            if own is not None and holder not in (None, own):
                # Another organisation's: said as for any address that is taken.
                return _import_problem(
                    request, settings, f"{name}: slug: there is already a campaign at that address"
                )
            if own is not None:
                campaign = campaign.model_copy(update={"organisation": own})
            version = save_campaign(conn, campaign, saved_by=member.email, new=holder is None)
    except CampaignError as exc:
        return _import_problem(request, settings, str(exc))
    return RedirectResponse(f"/admin/c/{campaign.slug}?saved={version}", status_code=303)


def _import_problem(request: Request, settings: SettingsModel, problem: str) -> HTMLResponse:
    return render(request, settings, "campaign_import.html", 400, errors={"file": problem})
