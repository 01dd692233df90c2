"""Did your MP reply? one short question to the supporter ``DEARMP_REPLY_QUESTION_AFTER_SECONDS``
(14 days) after their letter went, and at most one reminder of it
``DEARMP_REPLY_REMINDER_AFTER_SECONDS`` later unless they answered yes or no. A periodic task of
``dearmp serve mailer``.

``send_letter`` (handlers.py) writes a ``reply_questions`` row (the supporter's email, first name, language,
the target's name) before the letter goes; the sweep asks only about a letter whose ``letters``
row is ``sent``. Nothing goes to a supporter who was erased (``deliver_once`` checks the erased
list; erasure deletes the row), who left the campaign's emails (the updates service's list, read
through ``services.updates.reports``), or, for the reminder, who answered yes or no (intake's
``reply.answered`` closes the row: ``handlers.note_reply_answered``).

Exactly once: the question and the reminder are letters rows, (signature, "reply_question") and
(signature, "reply_reminder"), so ``deliver_once`` never sends either twice once sent. Replicas
sweeping at the same moment do not both send: each takes a short lease on the row, as the
confirmation reminder does (``reminders.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.mailer import compose
from services.mailer.delivery import Outcome, Outgoing, deliver_once
from services.mailer.handlers import MailerDeps
from services.mailer.models import letters
from services.mailer.models import reply_questions as questions
from services.updates.reports import unsubscribed
from shared.broker.consumer import PermanentFailure, TransientFailure
from shared.logging import get_logger
from shared.messages import Supporter, Target
from shared.replies import make_reply_token, reply_url

log = get_logger(__name__)

LEASE = timedelta(minutes=5)
BATCH = 100
QUESTION, REMINDER = "reply_question", "reply_reminder"
# Blanked once nothing more will go to the supporter.
CLOSED = {"email": "", "first_name": "", "lease_until": None}


def _due(now: datetime, settings: Any) -> sa.Select:  # type: ignore[type-arg]
    first = now - timedelta(seconds=settings.reply_question_after_seconds)
    again = now - timedelta(seconds=settings.reply_reminder_after_seconds)
    return (
        sa.select(questions, letters.c.sent_at.label("letter_sent_at"))
        .join(
            letters,
            sa.and_(
                letters.c.signature_id == questions.c.signature_id,
                letters.c.purpose == "letter",
                letters.c.state == "sent",
            ),
        )
        .where(
            questions.c.closed_at.is_(None),
            sa.or_(questions.c.lease_until.is_(None), questions.c.lease_until < now),
            sa.or_(
                sa.and_(questions.c.asked_at.is_(None), letters.c.sent_at <= first),
                sa.and_(
                    questions.c.asked_at.is_not(None),
                    questions.c.reminded_at.is_(None),
                    questions.c.asked_at <= again,
                ),
            ),
        )
        .order_by(questions.c.created_at)
        .limit(BATCH)
    )


def _take_lease(signature_id: UUID, reminder: bool):  # type: ignore[no-untyped-def]
    def may_send(conn: Connection) -> bool:
        now = datetime.now(UTC)
        step = questions.c.asked_at.is_not(None) if reminder else questions.c.asked_at.is_(None)
        taken = conn.execute(
            questions.update()
            .where(
                questions.c.signature_id == signature_id,
                questions.c.closed_at.is_(None),
                step,
                sa.or_(questions.c.lease_until.is_(None), questions.c.lease_until < now),
            )
            .values(lease_until=now + LEASE)
            .returning(questions.c.signature_id)
        ).first()
        return taken is not None

    return may_send


def _close(conn: Connection, signature_id: UUID, **values: Any) -> None:
    now = datetime.now(UTC)
    conn.execute(
        questions.update()
        .where(questions.c.signature_id == signature_id)
        .values(closed_at=now, **CLOSED, **values)
    )


def _recorded(signature_id: UUID, reminder: bool):  # type: ignore[no-untyped-def]
    def then(conn: Connection, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        if reminder or outcome != "sent":  # nothing more will go
            _close(conn, signature_id, **({"reminded_at": now} if reminder else {}))
        else:
            conn.execute(
                questions.update()
                .where(questions.c.signature_id == signature_id)
                .values(asked_at=now, lease_until=None)
            )

    return then


def _links(deps: MailerDeps, signature_id: UUID) -> dict[str, str]:
    token = make_reply_token(deps.settings.secret_key, signature_id)
    base = deps.settings.base_url
    return {a.replace("-", "_"): reply_url(base, token, a) for a in ("yes", "not-yet", "no")}


def send_due_reply_questions(deps: MailerDeps) -> int:
    """Send the questions and reminders that are due; returns how many went out."""
    with deps.engine.connect() as conn:
        rows = conn.execute(_due(datetime.now(UTC), deps.settings)).all()
        ids = [row.signature_id for row in rows]
        left = unsubscribed(conn, ids) if ids else set()
    sent = 0
    for row in rows:
        reminder = row.asked_at is not None
        if row.signature_id in left:
            with deps.engine.begin() as conn:  # they left the campaign's emails: nothing more
                _close(conn, row.signature_id)
            continue
        supporter = Supporter(
            first_name=row.first_name,
            last_name="",
            email=row.email,
            postcode="",
            language=row.language,
        )
        target = Target(name=row.target_name, kind=row.target_kind)
        purpose = REMINDER if reminder else QUESTION
        try:
            campaign = deps.campaign(row.campaign)
            msg = compose.reply_question(
                row.signature_id,
                campaign,
                supporter,
                target,
                row.letter_sent_at,
                _links(deps, row.signature_id),
                deps.settings,
                reminder=reminder,
            )
            outcome = deliver_once(
                deps.branded(
                    Outgoing(
                        row.signature_id,
                        purpose,
                        row.campaign,
                        msg,
                        row.email,
                        row.supporter_key,
                        signed_at=row.signed_at,
                    )
                ),
                engine=deps.engine,
                sender=deps.sender,
                settings=deps.settings,
                correlation_id=str(row.signature_id),
                may_send=_take_lease(row.signature_id, reminder),
                then=_recorded(row.signature_id, reminder),
            )
        except TransientFailure as exc:  # SMTP away: the lease runs out, the next sweep retries
            log.warning("reply question not sent, will retry", detail=str(exc)[:200])
            break
        except (PermanentFailure, ValueError) as exc:  # never sendable: do not try again
            log.error("reply question cannot be sent", detail=str(exc)[:200])
            with deps.engine.begin() as conn:
                _close(conn, row.signature_id)
            continue
        sent += outcome == "sent"
    if sent:
        log.info("reply questions sent", count=sent)
    return sent
