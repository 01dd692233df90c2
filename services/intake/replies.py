"""Did your MP reply? the pages behind the three links in the mailer's question email.

- ``GET /reply/{token}/{answer}`` (``yes``, ``not-yet``, ``no``) shows the question and a button;
  only the POST records the answer (mail scanners follow links, people press buttons). A later
  answer replaces an earlier one ("not yet", then "yes").
- ``GET /reply/{token}/thanks`` thanks them; after "yes" it offers a form to paste the reply,
  with a box to tick if they agree that the campaign may share it (otherwise it stays private
  to the campaign's organisation); ``POST /reply/{token}/text`` stores it.
A forged, mangled or expired link, or one for an erased signature, gives a page saying so (400).

Intake owns the answers (``reply_answers``); the staff dashboard and, when the campaign says
``show_reply_rate``, the public campaign page show the response rates (``reply_rates.py``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.intake import csrf
from services.intake.deps import Engine, Settings
from services.intake.models import reply_answers, signatures
from services.intake.pages import form_page, page
from shared import outbox
from shared.campaigns import get_campaign
from shared.i18n_markers import N_
from shared.messages import ReplyAnswered
from shared.replies import ANSWERS, read_reply_token
from shared.states import SignatureStatus
from shared.tokens import InvalidToken

router = APIRouter(include_in_schema=False)

REPLY_MAX = 10_000
ERASED_NAME = "[erased]"  # what erasure leaves of the name (handlers.forget_supporter)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _invalid(request: Request, reason: str) -> Response:
    return _private(page(request, "reply_invalid.html", 400, reason=reason))


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of Referer headers
    return response


def _signature(engine: Any, token: str, secret: str) -> tuple[Any, Any] | str:
    """(signature row, its campaign), or why the link does not work."""
    try:
        signature_id = read_reply_token(secret, token)
    except InvalidToken as exc:
        return exc.reason
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                signatures.c.id,
                signatures.c.campaign,
                signatures.c.status,
                signatures.c.first_name,
                signatures.c.target_name,
                signatures.c.sent_at,
                reply_answers.c.answer,
                reply_answers.c.reply_text,
            )
            .select_from(
                signatures.outerjoin(reply_answers, reply_answers.c.signature_id == signatures.c.id)
            )
            .where(signatures.c.id == signature_id)
        ).first()
        campaign = get_campaign(conn, row.campaign) if row is not None else None
    if row is None or campaign is None or _erased(row):
        return "invalid"
    return row, campaign


def _erased(row: Any) -> bool:
    """Erased before confirming, or after (handlers.forget_supporter's placeholder name)."""
    return bool(row.status == SignatureStatus.ERASED or row.first_name == ERASED_NAME)


@router.get("/reply/{token}/thanks", response_class=HTMLResponse)
def thanks(token: str, request: Request, engine: Engine, settings: Settings) -> Response:
    found = _signature(engine, token, settings.secret_key)
    if isinstance(found, str):
        return _invalid(request, found)
    row, campaign = found
    if row.answer is None:  # nothing answered yet: back to the question
        return RedirectResponse(f"/reply/{token}/yes", status_code=303)
    return _thanks_page(request, settings, token, row, campaign)


def _thanks_page(
    request: Request,
    settings: Any,
    token: str,
    row: Any,
    campaign: Any,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    return _private(
        form_page(
            request,
            "reply_thanks.html",
            settings.secret_key,
            status,
            token=token,
            campaign=campaign,
            target_name=row.target_name,
            answer=row.answer,
            saved=saved or bool(row.reply_text),
            values=values or {},
            errors=errors or {},
            reply_max=REPLY_MAX,
            lang_path=f"/reply/{token}/thanks",
        )
    )


@router.post("/reply/{token}/text", response_class=HTMLResponse)
async def paste(token: str, request: Request, engine: Engine, settings: Settings) -> Response:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_paste, token, request, engine, settings, fields)


def _paste(
    token: str, request: Request, engine: Engine, settings: Settings, form: dict[str, str]
) -> Response:
    found = _signature(engine, token, settings.secret_key)
    if isinstance(found, str):
        return _invalid(request, found)
    row, campaign = found
    if not csrf.valid(request, form.get(csrf.FIELD), settings.secret_key):
        return form_page(request, "form_expired.html", settings.secret_key, 400)
    text = _CONTROL.sub("", form.get("reply_text", "")).strip()
    values = {"reply_text": text, "share_reply": form.get("share_reply", "")}
    error = None
    if not text:
        error = N_("Paste the reply you received")
    elif len(text) > REPLY_MAX:
        error = N_("The reply must be 10,000 characters or fewer")
    if row.answer != "yes" or error:
        errors = {"reply_text": error} if error else {}
        return _thanks_page(
            request, settings, token, row, campaign, status=400, values=values, errors=errors
        )
    with engine.begin() as conn:
        conn.execute(
            reply_answers.update()
            .where(reply_answers.c.signature_id == row.id)
            .values(
                reply_text=text,
                share_reply=form.get("share_reply") == "yes",
                reply_pasted_at=datetime.now(UTC),
            )
        )
    return _thanks_page(request, settings, token, row, campaign, saved=True)


@router.get("/reply/{token}/{answer}", response_class=HTMLResponse)
def question(
    token: str, answer: str, request: Request, engine: Engine, settings: Settings
) -> Response:
    if answer not in ANSWERS:
        return page(request, "not_found.html", 404)
    found = _signature(engine, token, settings.secret_key)
    if isinstance(found, str):
        return _invalid(request, found)
    row, campaign = found
    return _private(
        form_page(
            request,
            "reply.html",
            settings.secret_key,
            token=token,
            answer=answer,
            campaign=campaign,
            target_name=row.target_name,
            lang_path=f"/reply/{token}/{answer}",
        )
    )


@router.post("/reply/{token}/{answer}", response_class=HTMLResponse)
async def record(
    token: str, answer: str, request: Request, engine: Engine, settings: Settings
) -> Response:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_record, token, answer, request, engine, settings, fields)


def _record(
    token: str,
    answer: str,
    request: Request,
    engine: Engine,
    settings: Settings,
    form: dict[str, str],
) -> Response:
    if answer not in ANSWERS:
        return page(request, "not_found.html", 404)
    found = _signature(engine, token, settings.secret_key)
    if isinstance(found, str):
        return _invalid(request, found)
    row, _campaign = found
    if not csrf.valid(request, form.get(csrf.FIELD), settings.secret_key):
        return form_page(request, "form_expired.html", settings.secret_key, 400)
    save_answer(engine, row.id, row.campaign, ANSWERS[answer])
    return RedirectResponse(f"/reply/{token}/thanks", status_code=303)


def save_answer(engine: Any, signature_id: uuid.UUID, campaign: str, answer: str) -> None:
    """Record (or replace) the supporter's answer, and stage ``reply.answered`` (after yes or no
    the mailer sends no reminder). One upsert: pressing twice changes nothing but the time. A
    pasted reply stays only with "yes"."""
    now = datetime.now(UTC)
    insert = pg_insert(reply_answers).values(
        signature_id=signature_id, campaign=campaign, answer=answer, answered_at=now
    )
    keep = answer == "yes"
    with engine.begin() as conn:  # the answer and its event (the mailer's reminder) together
        outbox.add(
            conn,
            ReplyAnswered(signature_id=signature_id, campaign=campaign, answer=answer),  # type: ignore[arg-type]
            correlation_id=signature_id,
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["signature_id"],
                set_={
                    "answer": answer,
                    "answered_at": now,
                    "reply_text": reply_answers.c.reply_text if keep else None,
                    "share_reply": reply_answers.c.share_reply if keep else False,
                    "reply_pasted_at": reply_answers.c.reply_pasted_at if keep else None,
                },
            )
        )
