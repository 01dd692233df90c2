"""Staff pages: the campaigns, one campaign's figures and charts, and its help requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake.admin import charts, queries
from services.intake.admin.dashboard import reports as campaign_reports
from services.intake.admin.publishing import next_number
from services.intake.admin.web import (
    Staff,
    checked_form,
    form_expired,
    protected_router,
    render,
)
from services.intake.deps import Engine, Settings
from services.intake.reply_rates import pasted_replies, reply_rates
from services.mailer.reports import DIGESTS, LETTERS, SUPPORTERS
from services.updates.reports import job_progress
from shared.campaigns import get_campaign

router = protected_router()
UK = ZoneInfo("Europe/London")
BLUE, GREEN, ORANGE, RED, GREY = "#1d70b8", "#00703c", "#f47738", "#d4351c", "#505a5f"
STATE_COLOURS = {"created": GREY, "sending": ORANGE, "sent": GREEN, "failed": RED}
# Who the campaign's emails are for, as the dashboard's table heads them.
AUDIENCES = {
    LETTERS: "Letters to targets",
    DIGESTS: "Daily digests to MPs' offices",
    SUPPORTERS: "Emails to supporters",
}


@router.get("/admin", response_class=HTMLResponse)
def dashboard(request: Request, engine: Engine, settings: Settings, member: Staff) -> HTMLResponse:
    """The account's organisation's campaigns (an operator's: every organisation's)."""
    with engine.connect() as conn:
        summaries = queries.campaign_summaries(conn, organisation=member.organisation)
    return render(
        request, settings, "index.html", campaigns=summaries, statuses=queries.STATUS_LABELS
    )


def signatures_chart(hours: list[queries.Hour]) -> tuple[Any, list[dict[str, Any]]]:
    """The chart and its table rows (UK time)."""
    slots: list[str] = []
    axis: list[str] = []
    rows: list[dict[str, Any]] = []
    for hour in hours:
        local = hour.start.astimezone(UK)
        name = f"{local:%a} {local.day} {local:%b}, {local:%H}:00"
        slots.append(name)
        label = f"{local:%H}:00" if local.hour % 6 == 0 else ""
        if local.hour == 0:
            label += f"\n{local:%a} {local.day} {local:%b}"
        axis.append(label)
        rows.append({"hour": name, "signed": hour.signed, "confirmed": hour.confirmed})
    signed = sum(h.signed for h in hours)
    confirmed = sum(h.confirmed for h in hours)
    busiest = max(rows, key=lambda r: r["signed"]) if signed else None
    desc = (
        f"Signatures received and confirmed in each hour of the last {len(hours)} hours, UK time: "
        f"{signed:,} received and {confirmed:,} confirmed in all."
        + (
            f" The busiest hour was {busiest['hour']}, with {busiest['signed']:,} received."
            if busiest
            else ""
        )
    )
    chart = charts.column_chart(
        chart_id="signatures-chart",
        title=f"Signatures per hour, last {len(hours)} hours",
        desc=desc,
        slots=slots,
        axis_labels=axis,
        series=[
            charts.Series("Received", BLUE, [h.signed for h in hours]),
            charts.Series("Confirmed", GREEN, [h.confirmed for h in hours]),
        ],
    )
    return chart, rows


def letters_chart(by_state: dict[str, int]) -> Any:
    """The letters to the campaign's targets by state (not the emails to supporters)."""
    parts = ", ".join(f"{n:,} {state}" for state, n in by_state.items())
    return charts.bar_chart(
        chart_id="letters-chart",
        title="Letters to targets by state",
        desc=f"Letters from this campaign's supporters to its targets, by state: {parts}.",
        bars=[(state, n, STATE_COLOURS.get(state, GREY)) for state, n in by_state.items()],
    )


def campaign_view(
    request: Request, engine: Engine, settings: Settings, slug: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    """The campaign's staff page; ``extra`` carries the composer's draft, preview or notice."""
    with engine.connect() as conn:
        campaign = get_campaign(conn, slug)
        if campaign is None:
            return render(request, settings, "not_found.html", 404)
        hours = queries.signatures_per_hour(conn, slug, now=datetime.now(UTC))
        emails = queries.emails_by_audience(conn, slug)
        duplicated = queries.maybe_duplicated(conn, slug)
        reports = campaign_reports(
            conn,
            slug,
            sort=request.query_params.get("sort"),
            order=request.query_params.get("order"),
        )
        help_requests = queries.open_help_requests(conn, slug)
        handled = queries.handled_help_count(conn, slug)
        updates = queries.published_updates(conn, slug)
        # Fan-out progress, read from the updates service's job table (read-only dashboard).
        fanouts = {u.number: job_progress(conn, slug, u.number) for u in updates if u.emailed}
        upcoming = next_number(conn, slug)
        summary = next(iter(queries.campaign_summaries(conn, slug)), None)
        replies = reply_rates(conn, slug)  # "Did your MP reply?"
        pasted = pasted_replies(conn, slug)
    chart, hour_rows = signatures_chart(hours)
    extra.setdefault("draft", {})
    return render(
        request,
        settings,
        "campaign.html",
        status,
        campaign=campaign,
        summary=summary,
        statuses=queries.STATUS_LABELS,
        signatures_chart=chart,
        hour_rows=hour_rows,
        letters_chart=letters_chart(emails[LETTERS]),
        maybe_duplicated=duplicated,
        emails=emails,
        # A column for digests only where the campaign has had some.
        audiences={k: v for k, v in AUDIENCES.items() if k != DIGESTS or any(emails[k].values())},
        **reports,
        help_requests=help_requests,
        handled=handled,
        updates=updates,
        fanouts=fanouts,
        next_number=upcoming,
        replies=replies,
        pasted=pasted,
        **extra,
    )


@router.get("/admin/c/{slug}", response_class=HTMLResponse)
def campaign_page(slug: str, request: Request, engine: Engine, settings: Settings) -> HTMLResponse:
    notice = None
    published = request.query_params.get("published", "")
    if published.isdigit():
        notice = f"Update #{int(published)} is published."
    elif request.query_params.get("handled") == "1":
        notice = "The help request is marked as handled."
    return campaign_view(request, engine, settings, slug, notice=notice)


@router.post("/admin/c/{slug}/help/{request_id}/handled")
async def help_handled(
    slug: str, request_id: int, request: Request, engine: Engine, settings: Settings
) -> Response:
    if await checked_form(request, settings) is None:
        return form_expired(request, settings)
    await run_in_threadpool(_mark_handled, engine, slug, request_id)
    return RedirectResponse(f"/admin/c/{slug}?handled=1#help", status_code=303)


def _mark_handled(engine: Engine, slug: str, request_id: int) -> None:
    with engine.begin() as conn:
        queries.mark_help_handled(conn, slug, request_id)
