"""Telling the operator that sending is paused: one ``sending_pauses`` row per mailer process
while the mail server refuses our set-up (``shared.smtp.SendingPause``), read by
``dearmp status`` and the staff pages through ``reports.py``."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from services.mailer.models import sending_pauses
from shared.config import Settings
from shared.logging import get_logger
from shared.smtp import SendingPause
from shared.supporters import mask_addresses

log = get_logger(__name__)


def recorder(engine: Engine, owner: str) -> Callable[[str | None, float], None]:
    """``SendingPause.on_change``: write (or, once sending resumes, delete) this process's row."""

    def on_change(reason: str | None, seconds: float) -> None:
        now = datetime.now(UTC)
        try:
            with engine.begin() as conn:
                if reason is None:
                    conn.execute(sending_pauses.delete().where(sending_pauses.c.owner == owner))
                    return
                stmt = insert(sending_pauses).values(
                    owner=owner,
                    reason=mask_addresses(reason)[:300],
                    since=now,
                    until=now + timedelta(seconds=seconds),
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[sending_pauses.c.owner],
                        set_={"reason": stmt.excluded.reason, "until": stmt.excluded.until},
                    )
                )
        except sa.exc.SQLAlchemyError as exc:  # the log line and the metric still tell
            log.warning("could not record the sending pause", error=type(exc).__name__)

    return on_change


def process_pause(settings: Settings, engine: Engine) -> SendingPause:
    """The mailer process's one pause, shared by its senders and recorded for the operator."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    return SendingPause(
        settings.smtp_pause_seconds,
        settings.smtp_pause_max_seconds,
        on_change=recorder(engine, owner),
    )
