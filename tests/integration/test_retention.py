"""Retention in intake and the shared tables: a signature never confirmed is deleted after
DEARMP_PENDING_SIGNATURE_DAYS, a confirmed one stays; help requests go after
DEARMP_HELP_REQUEST_DAYS; handled events are forgotten after DEARMP_INBOX_RETENTION_DAYS. (The
mailer's letters: tests/integration/test_mailer_delivery.py::test_retention_scrubs_…)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.intake.models import help_requests, signatures
from services.intake.retention import sweep
from shared import inbox
from shared.states import SignatureStatus
from tests.integration.admin_helpers import make_signature_row


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_what_has_outlived_its_purpose_is_deleted_and_nothing_else(engine, settings) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=15), now - timedelta(days=13)
    rows = [
        make_signature_row(created_at=old),  # pending, past 14 days: goes
        make_signature_row(created_at=recent),  # pending, within: stays
        make_signature_row(created_at=old, confirmed_at=old),  # confirmed: stays
    ]
    with engine.begin() as conn:
        conn.execute(signatures.insert(), rows)
        conn.execute(
            help_requests.insert(),
            [
                {
                    "campaign": "c",
                    "name": "Jo",
                    "email": "jo@example.org",
                    "message": "old",
                    "created_at": now - timedelta(days=91),
                },
                {
                    "campaign": "c",
                    "name": "Al",
                    "email": "al@example.org",
                    "message": "new",
                    "created_at": now - timedelta(days=1),
                },
            ],
        )
        for age in (31, 29):
            inbox.claim(conn, "test", uuid.uuid4())
            conn.execute(
                inbox.inbox.update()
                .where(inbox.inbox.c.consumer == "test", inbox.inbox.c.processed_at > now)
                .values(processed_at=now - timedelta(days=age))
            )
    assert sweep(engine, settings, now) == {"pending_signatures": 1, "help_requests": 1}
    with engine.connect() as conn:
        left = conn.execute(sa.select(signatures.c.id, signatures.c.status)).all()
        messages = conn.execute(sa.select(help_requests.c.message)).scalars().all()
    assert {r.id for r in left} == {rows[1]["id"], rows[2]["id"]}
    assert {r.status for r in left} == {SignatureStatus.PENDING, SignatureStatus.SENT}
    assert messages == ["new"]
    assert sweep(engine, settings, now) == {"pending_signatures": 0, "help_requests": 0}

    with engine.begin() as conn:
        assert inbox.prune(conn, now - timedelta(days=settings.inbox_retention_days)) == 1
    assert _count(engine, inbox.inbox) == 1
