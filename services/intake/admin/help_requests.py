"""One help request on the staff pages ("Can't sign? Tell us"): what the person wrote, the
answers sent, and a form to answer by email.

``GET /admin/c/{slug}/help/{request}`` (``request``: the request's public id, as in the staff
notice email) shows it to anyone who may read the campaign; ``POST …/reply`` (editors and
owners) stores the answer and stages ``help.replied`` in the same transaction: the mailer emails
it to the person once, From the organisation's sender name, Reply-To the staff member who wrote
it (the organisation keeps no contact address of its own, so the person's answer comes back to
whoever is helping them). Replying marks the request handled.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from services.intake.admin.web import Staff, checked_form, form_expired, protected_router, render
from services.intake.deps import Engine, Settings
from services.intake.models import help_replies, help_requests
from shared import outbox
from shared.campaigns import get_campaign
from shared.messages import HelpReplied
from shared.organisations import PLATFORM, get_organisation, organisation_of

router = protected_router()
ANSWER_MAX = 5000


def _request_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _found(conn: Connection, slug: str, public_id: uuid.UUID) -> Any:
    return conn.execute(
        sa.select(help_requests).where(
            help_requests.c.campaign == slug, help_requests.c.public_id == public_id
        )
    ).first()


def _organisation_name(conn: Connection, slug: str) -> str:
    found = organisation_of(conn, slug)
    organisation = get_organisation(conn, found) if found else None
    return organisation.name if organisation else PLATFORM


def _page(
    request: Request,
    engine: Any,
    settings: Any,
    slug: str,
    request_id: str,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    public_id = _request_id(request_id)
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
        found = _found(conn, slug, public_id) if public_id and campaign else None
        if found is None:
            return render(request, settings, "not_found.html", 404)
        answers = conn.execute(
            sa.select(help_replies)
            .where(help_replies.c.request_id == found.id)
            .order_by(help_replies.c.created_at)
        ).all()
        organisation = _organisation_name(conn, slug)
    extra.setdefault("answer", "")
    return render(
        request,
        settings,
        "help_request.html",
        status,
        campaign=campaign,
        help=found,
        answers=answers,
        organisation=organisation,
        **extra,
    )


@router.get("/admin/c/{slug}/help/{request_id}", response_class=HTMLResponse)
def help_request_page(
    slug: str, request_id: str, request: Request, engine: Engine, settings: Settings
) -> HTMLResponse:
    notice = "Your answer is on its way by email." if request.query_params.get("replied") else None
    return _page(request, engine, settings, slug, request_id, notice=notice)


@router.post("/admin/c/{slug}/help/{request_id}/reply", response_class=HTMLResponse)
async def reply(
    slug: str,
    request_id: str,
    request: Request,
    engine: Engine,
    settings: Settings,
    member: Staff,
) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    answer = form.get("answer", "").replace("\r\n", "\n").strip()
    problem = None
    if not answer:
        problem = "Write your answer"
    elif len(answer) > ANSWER_MAX:
        problem = f"Your answer must be {ANSWER_MAX} characters or fewer"
    if problem:
        errors = {"answer": problem}
        return _page(request, engine, settings, slug, request_id, 400, answer=answer, errors=errors)
    sent = await run_in_threadpool(_send, engine, slug, request_id, answer, member.email)
    if not sent:
        return render(request, settings, "not_found.html", 404)
    return RedirectResponse(f"/admin/c/{slug}/help/{request_id}?replied=1", status_code=303)


def _send(engine: Any, slug: str, request_id: str, answer: str, staff_email: str) -> bool:
    """Store the answer, mark the request handled and stage help.replied, in one transaction."""
    public_id = _request_id(request_id)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        found = _found(conn, slug, public_id) if public_id else None
        if found is None:
            return False
        reply_id = uuid.uuid4()
        conn.execute(
            help_replies.insert().values(
                id=reply_id,
                request_id=found.id,
                staff_email=staff_email,
                body=answer,
                created_at=now,
            )
        )
        conn.execute(
            help_requests.update()
            .where(help_requests.c.id == found.id, help_requests.c.handled_at.is_(None))
            .values(handled_at=now)
        )
        event = HelpReplied(
            reply_id=reply_id,
            request_id=found.public_id,
            campaign=slug,
            email=found.email,
            language=found.language,
            text=answer,
            organisation=_organisation_name(conn, slug),
            reply_to=staff_email,
        )
        outbox.add(conn, event, correlation_id=found.public_id)
    return True
