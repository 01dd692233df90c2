"""Server-rendered pages: the campaign, signing, confirming, thanks and help. No JavaScript needed."""

from __future__ import annotations

import uuid
from types import EllipsisType
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine as SqlEngine

from services.intake import csrf, i18n
from services.intake.content import default_letter, letter_preview, markdown, updates_for
from services.intake.counts import campaign_counts
from services.intake.deps import Db, Engine, Settings, client_ip
from services.intake.drafts import public_campaign, public_campaign_async
from services.intake.forms import COMMENT_MAX, LETTER_MAX
from services.intake.helprequests import submit_help_request
from services.intake.progress import LOOKS, Waiting, links_of, progress_of, sentences
from services.intake.reply_rates import reply_rates
from services.intake.signing import Outcome, confirm_signature, submit_signature, supporter_of
from services.intake.sources import sources_of
from services.mailer.reports import letter_waiting
from shared.campaigns import SLUG_RE, Campaign, CampaignError, check_letter, open_campaigns
from shared.config import Settings as SettingsModel
from shared.i18n_markers import N_
from shared.letters import RenderedLetter, TemplateProblem, render_letter
from shared.messages import Target
from shared.organisations import cached_brand, cached_list_opt_in, get_organisation
from shared.states import SignatureStatus
from shared.tokens import CONFIRM, THANKS, InvalidToken, make_token, read_token

router = APIRouter(include_in_schema=False)


def own_path(path: str) -> str:
    """A path that stays on this site as a link: "//evil.example/x" (the 404 page of a crafted
    address) would be another site's address to a browser."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def page(
    request: Request, name: str, status: int = 200, signed_in: str | None = None, **context: Any
) -> HTMLResponse:
    """``signed_in``: the language of the signature the page is about (``i18n.pick_locale``)."""
    locale = i18n.pick_locale(request, signed_in)
    context.setdefault("errors", {})
    # Language links must lead to a page that answers GET (not to the form's POST address).
    context.setdefault("lang_path", own_path(request.url.path) if request.method == "GET" else "")
    html = i18n.environment(locale).get_template(name).render(request=request, **context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Language"] = locale
    response.headers["Vary"] = "Accept-Language, Cookie"
    if request.query_params.get("lang") in i18n.LOCALES:
        response.set_cookie(
            i18n.COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax", httponly=True
        )
    return response


def form_page(
    request: Request, name: str, secret: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page with a form: carries a CSRF token tied to the visitor's cookie."""
    cookie, token = csrf.issue(request, secret)
    response = page(request, name, status, csrf_token=token, **context)
    csrf.set_cookie(response, cookie, secure=str(request.url).startswith("https"))
    return response


def _campaign(engine: Engine, slug: str) -> Campaign | None:
    """The campaign, if the public may see it (``drafts.public_campaign``)."""
    with engine.connect() as conn:
        return public_campaign(conn, slug)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, engine: Engine) -> HTMLResponse:
    """The open campaigns: title, how many have signed, and the link to each."""
    with engine.connect() as conn:
        found = open_campaigns(conn)
    listed = [
        {"slug": c.slug, "title": c.title, "total": campaign_counts(engine, c.slug).total}
        for c in found
    ]
    return page(request, "index.html", campaigns=listed)


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request, settings: Settings) -> HTMLResponse:
    """The default privacy notice (a campaign may link its own with ``privacy_url``)."""
    return page(request, "privacy.html", retention_days=f"{settings.retention_days:g}")


@router.get("/privacy/{organisation}", response_class=HTMLResponse)
def organisation_privacy(organisation: str, request: Request, engine: Engine) -> HTMLResponse:
    """An organisation's own privacy notice, when it gave its text rather than an address: the
    campaign form links to it beside its opt-in and in the consent."""
    with engine.connect() as conn:
        org = get_organisation(conn, organisation) if SLUG_RE.match(organisation) else None
    if org is None or not org.privacy_text.strip():
        return page(request, "not_found.html", 404)
    return page(
        request,
        "org_privacy.html",
        organisation=org.name,
        notice_html=markdown(org.privacy_text, 1),  # below the page's h1
    )


@router.get("/terms", response_class=HTMLResponse)
def terms(request: Request) -> HTMLResponse:
    """The default terms (a campaign may link its own with ``terms_url``)."""
    return page(request, "terms.html")


@router.get("/c/{slug}.json")
def campaign_counts_json(slug: str, engine: Engine) -> Response:
    campaign = _campaign(engine, slug)
    if campaign is None:
        return JSONResponse({"detail": "There is no campaign with that name"}, status_code=404)
    counts = campaign_counts(engine, slug)
    return JSONResponse(
        {
            "slug": slug,
            "total": counts.total,
            "goal": campaign.goal,
            "by_constituency": counts.by_constituency,
            "as_of": counts.as_of.isoformat(),
        },
        headers={"Cache-Control": "public, max-age=3"},
    )


def share_for(campaign: Campaign, settings: SettingsModel) -> tuple[str, str]:
    """The campaign's address and what sharing it says (its share text, or its title), with the
    address after it."""
    url = f"{settings.base_url}/c/{campaign.slug}"
    return url, f"{campaign.share_text or campaign.title} {url}"


def render_campaign(
    request: Request,
    engine: Engine,
    settings: Settings,
    campaign: Campaign,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    org_opt_in: tuple[str, str] | None | EllipsisType = ...,
) -> HTMLResponse:
    """The campaign page. ``org_opt_in``: (organisation, wording) of its own-list opt-in, or
    None; left out, it is read for the stored campaign (cached a few seconds). The staff
    preview passes it: a campaign being written may not be stored yet, and a preview must not
    leave "no opt-in" in the cache for an address about to be saved."""
    if org_opt_in is ...:
        org_opt_in = cached_list_opt_in(engine, campaign.slug)
    with engine.connect() as conn:
        updates = updates_for(conn, campaign.slug)
        # "43% of MPs have replied to their constituents", when the campaign shows it.
        replies = reply_rates(conn, campaign.slug) if campaign.show_reply_rate else None
    return form_page(
        request,
        "campaign.html",
        settings.secret_key,
        status,
        campaign=campaign,
        story_html=markdown(campaign.story, 1),  # below the campaign's h1
        letter=letter_preview(campaign),
        letter_default=default_letter(campaign),  # None: the letter is not editable
        total=campaign_counts(engine, campaign.slug).total,
        updates=updates,
        replies=replies,
        brand=cached_brand(engine, campaign.slug),
        values=values or {},
        errors=errors or {},
        comment_max=COMMENT_MAX,
        letter_max=LETTER_MAX,
        lang_path=f"/c/{campaign.slug}",
        org_opt_in=org_opt_in,  # (organisation, wording) | None
        sources=sources_of(values or request.query_params),  # ?source=, utm_*: hidden fields
        **dict(zip(("share_url", "share_text"), share_for(campaign, settings), strict=True)),
    )


@router.get("/c/{slug}", response_class=HTMLResponse)
def campaign_page(slug: str, request: Request, engine: Engine, settings: Settings) -> HTMLResponse:
    campaign = _campaign(engine, slug)
    if campaign is None:
        return page(request, "not_found.html", 404)
    return render_campaign(request, engine, settings, campaign)


@router.post("/c/{slug}/sign", response_class=HTMLResponse)
async def sign(slug: str, request: Request, engine: Engine, db: Db, settings: Settings) -> Response:
    """Signing runs on the event loop (see ``services.intake.db``); only re-rendering the form
    (it reads updates and counts with the synchronous engine) goes to a worker thread."""
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("csrf_token", "website")}
    campaign = await public_campaign_async(db, slug)
    if campaign is None:
        return page(request, "not_found.html", 404)
    if not campaign.open:
        return await run_in_threadpool(
            render_campaign, request, engine, settings, campaign, status=409
        )
    if not csrf.valid(request, str(form.get("csrf_token") or ""), settings.secret_key):
        return form_page(request, "form_expired.html", settings.secret_key, 400)
    check_email = RedirectResponse(f"/c/{slug}/check-email", status_code=303)
    if form.get("website"):
        return check_email  # a bot filled the hidden field: say the usual thing, store nothing
    editable = default_letter(campaign) is not None
    if not editable:
        values.pop("letter", None)  # the form has no such field: whatever came is not ours
    result = await submit_signature(
        db,
        settings,
        campaign,
        values,
        client_ip(request),
        letter_required=editable,
        language=i18n.pick_locale(request),
    )
    if result.outcome is Outcome.RATE_LIMITED:
        response = page(request, "too_many.html", 429)
        response.headers["Retry-After"] = "600"
        return response
    if result.outcome is Outcome.INVALID:
        return await run_in_threadpool(
            lambda: render_campaign(
                request, engine, settings, campaign, values=values, errors=result.errors, status=400
            )
        )
    return check_email


@router.get("/c/{slug}/sign", include_in_schema=False)
def sign_get(slug: str) -> RedirectResponse:
    """Someone reloaded or bookmarked the form's address: take them to the form."""
    return RedirectResponse(f"/c/{slug}", status_code=303)


@router.get("/c/{slug}/check-email", response_class=HTMLResponse)
def check_email(slug: str, request: Request, engine: Engine) -> HTMLResponse:
    campaign = _campaign(engine, slug)
    if campaign is None:
        return page(request, "not_found.html", 404)
    return page(request, "check_email.html", campaign=campaign)


@router.get("/c/{slug}/help", response_class=HTMLResponse)
def help_page(slug: str, request: Request, engine: Engine, settings: Settings) -> HTMLResponse:
    campaign = _campaign(engine, slug)
    if campaign is None:
        return page(request, "not_found.html", 404)
    return form_page(request, "help.html", settings.secret_key, campaign=campaign, values={})


@router.post("/c/{slug}/help", response_class=HTMLResponse)
async def help_submit(slug: str, request: Request, engine: Engine, settings: Settings) -> Response:
    form = await request.form()
    return await run_in_threadpool(_help_submit, slug, request, engine, settings, dict(form))


def _help_submit(
    slug: str, request: Request, engine: Engine, settings: Settings, form: dict[str, Any]
) -> Response:
    campaign = _campaign(engine, slug)
    if campaign is None:
        return page(request, "not_found.html", 404)
    if not csrf.valid(request, str(form.get("csrf_token") or ""), settings.secret_key):
        return form_page(request, "form_expired.html", settings.secret_key, 400)
    values = {k: str(v) for k, v in form.items() if k in ("name", "email", "message")}
    if form.get("website"):
        return page(request, "help_done.html", campaign=campaign)
    language = i18n.pick_locale(request)
    errors = submit_help_request(engine, settings, slug, values, client_ip(request), language)
    if errors is None:
        return page(request, "too_many.html", 429)
    if errors:
        return form_page(
            request,
            "help.html",
            settings.secret_key,
            400,
            campaign=campaign,
            values=values,
            errors=errors,
            lang_path=f"/c/{slug}/help",
        )
    return page(request, "help_done.html", campaign=campaign, lang_path=f"/c/{slug}")


def _signature_from(token: str, secret: str, purpose: str = CONFIRM) -> uuid.UUID | str:
    try:
        return uuid.UUID(read_token(secret, purpose, token))
    except InvalidToken as exc:
        return exc.reason
    except ValueError:
        return "invalid"


# The confirm and thank-you pages read the signature with its campaign's version (the campaign
# itself is parsed once per version, ``IntakeDb.campaign_as_of``), on the event loop.
SIGNATURE_PAGE = """
SELECT s.*, c.updated_at AS campaign_updated_at
FROM signatures s JOIN campaigns c ON c.slug = s.campaign WHERE s.id = %(id)s
"""
# Erasure leaves a confirmed signature its status (it still counts) and no supporter_key.
THANKS_PAGE = """
SELECT s.campaign, s.status, s.target_name, s.constituency_name, s.unresolvable_reason,
       s.sent_at, s.confirmed_at, s.language, s.supporter_key IS NULL AS erased,
       c.updated_at AS campaign_updated_at
FROM signatures s JOIN campaigns c ON c.slug = s.campaign WHERE s.id = %(id)s
"""


def _fails_for_everyone(campaign: Campaign) -> bool:
    """Whether the campaign's letter cannot be written for the sample supporters either."""
    try:
        check_letter(campaign)
    except CampaignError:
        return True
    return False


@router.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm_page(token: str, request: Request, db: Db, settings: Settings) -> HTMLResponse:
    """Show exactly what will be sent, and to whom, above a button; only the POST confirms (mail
    scanners follow links, people press buttons). Someone who did not sign is told to do
    nothing. A campaign that writes to one fixed target names it: never "your MP". Once used,
    the link shows nothing of the signature (it stays valid for days, in an inbox others may
    read): only that it was confirmed, and the way to the thank-you page."""
    found = _signature_from(token, settings.secret_key)
    if isinstance(found, str):
        return page(request, "confirm_invalid.html", 400, reason=found)
    row = await db.read_one(SIGNATURE_PAGE, {"id": found})
    signed_in = row.language if row is not None else None
    if row is not None and row.status not in (SignatureStatus.PENDING, SignatureStatus.ERASED):
        return page(
            request,
            "confirm_used.html",
            signed_in=signed_in,
            thanks_url=thanks_url(settings, found),
        )
    campaign = await db.campaign_as_of(row.campaign, row.campaign_updated_at) if row else None
    if row is None or campaign is None or row.status == SignatureStatus.ERASED:
        return page(request, "confirm_invalid.html", 400, signed_in=signed_in, reason="invalid")
    supporter = supporter_of(row)
    fixed = campaign.target.name if campaign.target.kind == "fixed" else None
    locale = i18n.pick_locale(request, signed_in)
    shown = Target(name=fixed or i18n.translations(locale).gettext(YOUR_MP), kind="fixed")
    try:
        letter: RenderedLetter | None = render_letter(campaign, supporter, shown)
    except TemplateProblem:
        if await run_in_threadpool(_fails_for_everyone, campaign):  # stored before the rule
            return page(request, "letter_unavailable.html", 503, signed_in=signed_in)
        # It fails only for this supporter's details (the samples pass): they may confirm, and
        # the mailer fails this signature visibly (the reason on the organisation's pages, its
        # owners told), instead of it waiting unconfirmed where nobody sees it.
        letter = None
    return form_page(
        request,
        "confirm.html",
        settings.secret_key,
        signed_in=signed_in,
        token=token,
        campaign=campaign,
        fixed_target=fixed,
        supporter=supporter,
        letter=letter,
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
async def confirm(token: str, request: Request, db: Db, settings: Settings) -> Response:
    found = _signature_from(token, settings.secret_key)
    if isinstance(found, str):
        return page(request, "confirm_invalid.html", 400, reason=found)
    form = await request.form()
    if not csrf.valid(request, str(form.get("csrf_token") or ""), settings.secret_key):
        return form_page(request, "form_expired.html", settings.secret_key, 400)
    if not await confirm_signature(db, found):
        return page(request, "confirm_invalid.html", 400, reason="invalid")
    return RedirectResponse(thanks_url(settings, found), status_code=303)


def thanks_url(settings: SettingsModel, signature_id: uuid.UUID) -> str:
    """The thank-you page's address: a token of its own, so the page cannot be reached with
    the confirm link (which shows the supporter's details) and the confirm link cannot be
    learnt from it."""
    return f"/thanks/{make_token(settings.secret_key, THANKS, str(signature_id))}"


YOUR_MP = N_("[your MP's name]")  # where the letter names the MP, before we know who it is


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 4 else 0


def _waiting(engine: SqlEngine, signature_id: uuid.UUID) -> Waiting | None:
    with engine.connect() as conn:
        return letter_waiting(conn, signature_id)


@router.get("/thanks/{token}", response_class=HTMLResponse)
async def thanks(
    token: str, request: Request, db: Db, engine: Engine, settings: Settings
) -> HTMLResponse:
    """The letter's progress (``progress.progress_of``: one stage, its own words), under its
    own token (``thanks_url``), in the language the supporter signed in unless they chose
    another. ``THANKS_PAGE`` reads nothing of the supporter but the state of their signature
    and the MP it goes to; once they are erased the page says only that. While the letter is on
    its way the page looks again every 5 s, for a minute (``?wait=``), then says it is taking
    longer and stops (the supporter's copy will tell them it went)."""
    found = _signature_from(token, settings.secret_key, THANKS)
    if isinstance(found, str):
        return page(request, "confirm_invalid.html", 400, reason=found, link="thanks")
    row = await db.read_one(THANKS_PAGE, {"id": found})
    campaign = await db.campaign_as_of(row.campaign, row.campaign_updated_at) if row else None
    if row is None or campaign is None:
        return page(request, "confirm_invalid.html", 400, reason="invalid")
    looked = min(_int(request.query_params.get("wait")), LOOKS)
    fixed = campaign.target.name if campaign.target.kind == "fixed" else None
    # Only a letter to an MP waits for its day (a digest, the daily cap): ask the mailer then.
    waiting = (
        await run_in_threadpool(_waiting, engine, found)
        if row.status == SignatureStatus.RESOLVED and not row.erased and not fixed
        else None
    )
    progress = progress_of(row, fixed_target=fixed, waiting=waiting, looked=looked)
    locale = i18n.pick_locale(request, row.language)
    share_url, share_text = share_for(campaign, settings)
    return page(
        request,
        "thanks.html",
        signed_in=row.language,
        campaign=campaign,
        stage=progress.stage.value,
        says=sentences(progress, i18n.translations(locale).gettext, locale),
        links=links_of(progress, token=token, campaign=campaign.slug),
        refresh_url=f"/thanks/{token}?wait={looked + 1}" if progress.looks_again else None,
        thank_you_html=markdown(campaign.thank_you, 1) if campaign.thank_you else "",
        share_url=share_url,
        share_text=share_text,
    )
