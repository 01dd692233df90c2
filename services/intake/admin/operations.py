"""Staff pages for what went wrong: failed letters, and the dead-letter queues with replay; and
subject access (everything held about one person).

Failed letters and dead letters show no personal data: addresses are masked
(``j***@example.org``) and a dead letter is shown by its event id, type, attempts and error, never
its payload. An organisation's staff see only their organisation's failed letters, the dead
letters about its campaigns (on the failed-letters page, ``failures.dead_letters_of``) and, in
subject access, only what its campaigns hold; the dead-letter queues themselves (every
organisation's events) and their replay are for platform operators only.
"""

from __future__ import annotations

from typing import Any

import pika.exceptions
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake.admin.access import held_about
from services.intake.admin.failures import dead_letters_of
from services.intake.admin.roles import Power
from services.intake.admin.web import (
    NotFound,
    Staff,
    campaign_visible,
    checked_form,
    form_expired,
    protected_router,
    render,
)
from services.intake.deps import Engine, Settings
from services.mailer.reports import bounce_report, failed_letters
from shared.broker import dlq
from shared.config import Settings as SettingsModel
from shared.organisations import campaigns_of
from shared.supporters import mask_addresses
from shared.topology import SERVICES, Topology

router = protected_router()
# Looking a person up is a POST (the address stays out of URLs and logs) that changes nothing.
lookup = protected_router(changes=Power.READ)
platform = protected_router(reads=Power.PLATFORM, changes=Power.PLATFORM)
routers = [router, lookup, platform]
SHOWN = 100  # dead letters listed per service
FAILED_SHOWN = 200


@router.get("/admin/letters/failed", response_class=HTMLResponse)
def failed(request: Request, engine: Engine, settings: Settings, member: Staff) -> HTMLResponse:
    campaign = request.query_params.get("campaign") or None
    if campaign is not None and not campaign_visible(engine, member, campaign):
        raise NotFound()
    shown: list[str] | None = None if campaign is None else [campaign]
    if campaign is not None or member.organisation is None:
        rows = failed_letters(engine, campaign=campaign, limit=FAILED_SHOWN)
    else:
        with engine.connect() as conn:
            theirs = campaigns_of(conn, member.organisation)
        shown = list(theirs)
        rows = [r for c in theirs for r in failed_letters(engine, campaign=c, limit=FAILED_SHOWN)]
        rows = sorted(rows, key=lambda r: r["failed_at"] or "", reverse=True)[:FAILED_SHOWN]
    with engine.connect() as conn:  # an organisation's staff: only its campaigns' bounces
        bounced = bounce_report(conn, campaigns=shown)
    # The dead letters about its campaigns (operators replay them at /admin/dlq).
    stuck, stuck_problem = dead_letters_of(engine, settings, member)
    if campaign is not None:
        stuck = [d for d in stuck if d["campaign"] == campaign]
    return render(
        request,
        settings,
        "failed.html",
        rows=rows,
        campaign=campaign,
        bounced=bounced,
        stuck=stuck,
        stuck_problem=stuck_problem,
    )


def _queues(settings: SettingsModel) -> tuple[list[dict[str, Any]], str | None]:
    topology = Topology(settings.broker_namespace)
    out: list[dict[str, Any]] = []
    try:
        for service in SERVICES:
            entry: dict[str, Any] = {
                "service": service,
                "queue": topology.dead_letter_queue(service),
                "depth": None,
                "messages": [],
            }
            try:
                entry["depth"], letters = dlq.list_dead_letters(
                    settings.amqp_url, topology, service, limit=SHOWN
                )
                entry["messages"] = [
                    {**m.as_json(), "error": mask_addresses(m.error)} for m in letters
                ]
            except dlq.QueueMissing:
                pass
            out.append(entry)
    except (dlq.BrokerUnavailable, pika.exceptions.AMQPError, OSError) as exc:
        return out, f"RabbitMQ cannot be reached ({type(exc).__name__}); try again shortly."
    return out, None


@lookup.get("/admin/supporters", response_class=HTMLResponse)
def supporter_search(request: Request, settings: Settings) -> HTMLResponse:
    """Subject access: a form for the address (POSTed, so it stays out of URLs and logs)."""
    return render(request, settings, "supporter.html", email="", record=None)


@lookup.post("/admin/supporters", response_class=HTMLResponse)
async def supporter_record(
    request: Request, engine: Engine, settings: Settings, member: Staff
) -> Response:
    form = await checked_form(request, settings)
    if form is None:
        return form_expired(request, settings)
    email = form.get("email", "").strip()
    if "@" not in email.strip("@") or len(email) > 320:
        errors = {"email": "Enter the email address the person signed with"}
        return render(request, settings, "supporter.html", 400, email=email, errors=errors)
    record = await run_in_threadpool(
        held_about, engine, email, settings.secret_key, organisation=member.organisation
    )
    return render(request, settings, "supporter.html", email=email, record=record)


@platform.get("/admin/dlq", response_class=HTMLResponse)
def dead_letters(request: Request, settings: Settings) -> HTMLResponse:
    queues, problem = _queues(settings)
    notice = None
    moved, service = request.query_params.get("replayed", ""), request.query_params.get("service")
    if moved.isdigit() and service in SERVICES:
        notice = (
            f"{int(moved)} messages moved from the {service} dead-letter queue back to its queue."
        )
    return render(
        request, settings, "dlq.html", queues=queues, problem=problem, notice=notice, shown=SHOWN
    )


@platform.post("/admin/dlq/{service}/replay")
async def replay(service: str, request: Request, settings: Settings) -> Response:
    if await checked_form(request, settings) is None:
        return form_expired(request, settings)
    if service not in SERVICES:
        return render(request, settings, "not_found.html", 404)
    topology = Topology(settings.broker_namespace)
    try:
        moved = await run_in_threadpool(dlq.replay, settings.amqp_url, topology, service)
    except dlq.ReplayStopped as exc:
        return _problem(request, settings, str(exc))
    except (dlq.BrokerUnavailable, dlq.QueueMissing, pika.exceptions.AMQPError, OSError) as exc:
        return _problem(request, settings, f"Nothing was replayed: {exc or type(exc).__name__}")
    return RedirectResponse(f"/admin/dlq?replayed={moved}&service={service}", status_code=303)


def _problem(request: Request, settings: SettingsModel, message: str) -> HTMLResponse:
    queues, problem = _queues(settings)
    return render(
        request, settings, "dlq.html", 502, queues=queues, problem=problem or message, shown=SHOWN
    )
