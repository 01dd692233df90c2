"""The update composer: preview, "send a test to me", publish.

One form with three buttons (``action``): preview renders the markdown as the campaign page will
(raw HTML is not rendered, so nothing typed can inject a script); a test goes to the signed-in
staff member only, by SMTP (sandboxed unless DEARMP_DELIVERY=live), built by the updates
service's own builder (``services.updates.compose.trial_copy``: the From, parts and headers
subscribers will get; listed in the import contracts); publish calls
``publish_update`` (the same function as the CLI) and shows the campaign page's new update.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from services.intake.admin.auth import StaffMember
from services.intake.admin.pages import campaign_view
from services.intake.admin.publishing import (
    PublishError,
    check_update,
    next_number,
    publish_update,
)
from services.intake.admin.web import Staff, checked_form, form_expired, protected_router
from services.intake.content import markdown
from services.intake.deps import Engine, Settings
from services.updates.compose import UpdateContent, sender_name, trial_copy
from shared.campaigns import get_campaign
from shared.config import Settings as SettingsModel
from shared.mail import delivery_recipients
from shared.organisations import sender_name_for
from shared.smtp import PermanentSmtpError, SmtpSender, SmtpTimeouts, TemporarySmtpError

router = protected_router()
DOUBLE_CLICK = timedelta(minutes=2)


@router.post("/admin/c/{slug}/updates")
async def compose(
    slug: str, request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    return await run_in_threadpool(_compose, slug, request, engine, settings, member, form)


def _compose(
    slug: str,
    request: Request,
    engine: Engine,
    settings: SettingsModel,
    member: StaffMember,
    form: dict[str, str],
) -> Response:
    draft = {
        "title": form.get("title", "").strip(),
        "body": form.get("body", "").replace("\r\n", "\n").strip(),
        "email_subscribers": form.get("email_subscribers") == "yes",
    }
    action = form.get("action", "preview")
    errors = check_update(draft["title"], draft["body"])  # type: ignore[arg-type]
    if errors:
        return campaign_view(request, engine, settings, slug, 400, draft=draft, errors=errors)
    title, body = str(draft["title"]), str(draft["body"])
    if action == "publish":
        try:
            with engine.begin() as conn:
                number = publish_update(
                    conn,
                    slug,
                    title,
                    body,
                    bool(draft["email_subscribers"]),
                    dedupe_window=DOUBLE_CLICK,
                )
        except PublishError as exc:
            return campaign_view(
                request, engine, settings, slug, 400, draft=draft, errors={"title": str(exc)}
            )
        return RedirectResponse(f"/admin/c/{slug}?published={number}#updates", status_code=303)
    preview = markdown(body, 3)  # under the update's h3, as on the campaign page
    notice = None
    if action == "test":
        notice = send_test(engine, settings, slug, member, title, body)
    return campaign_view(
        request, engine, settings, slug, draft=draft, preview_html=preview, notice=notice
    )


def send_test(
    engine: Engine, settings: SettingsModel, slug: str, member: StaffMember, title: str, body: str
) -> str:
    """Email the draft to the signed-in staff member; a sentence saying what happened."""
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
        number = next_number(conn, slug)
        organisation_sender = sender_name_for(conn, slug)
    content = UpdateContent(
        campaign=slug,
        campaign_title=campaign.title if campaign else slug,
        number=number,
        title=title,
        body=body,
        sender_name=sender_name(organisation_sender),
    )
    message = trial_copy(content, settings, member.email)
    to = delivery_recipients(
        message, member.email, live=settings.delivery == "live", sandbox_to=settings.sandbox_to
    )
    try:
        # A test to the staff member themselves, while they wait for the page: not worth minutes.
        sender = SmtpSender(settings.smtp_url, timeouts=SmtpTimeouts(20, 20, 20, 20, 20))
    except ValueError as exc:
        return f"The test could not be sent: {exc}"
    try:
        sender.send(message, to=to)
    except (TemporarySmtpError, PermanentSmtpError) as exc:
        return f"The test could not be sent: {exc}"
    finally:
        sender.close()
    where = member.email if settings.delivery == "live" else f"the sandbox ({settings.sandbox_to})"
    return f"A test was sent to {where}."
