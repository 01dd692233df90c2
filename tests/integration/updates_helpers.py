"""Factories and look-ups for the updates tests: subscribers, publishing, what the catcher got."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from services.intake.admin.publishing import publish_update
from services.updates.models import deliveries, fanout_jobs, subscribers
from shared.supporters import normalise_email
from tests.support import wait_until

SLUG = "guardians-for-children"
OTHER_SLUG = "email-the-home-secretary"


@dataclass(frozen=True)
class Sub:
    id: int
    signature_id: uuid.UUID
    email: str
    campaign: str


def add_subscribers(
    engine: sa.Engine,
    count: int,
    *,
    campaign: str = SLUG,
    emails: list[str] | None = None,
) -> list[Sub]:
    """Subscriber rows written directly (as record_subscriber would), in one statement."""
    tag = uuid.uuid4().hex[:6]
    addresses = emails or [f"sub-{tag}-{i:05d}@example.org" for i in range(count)]
    now = datetime.now(UTC)
    rows = [
        {
            "campaign": campaign,
            "signature_id": uuid.uuid4(),
            "email": address,
            "email_normalised": normalise_email(address),
            "first_name": f"Sub{i}",
            "created_at": now,
        }
        for i, address in enumerate(addresses)
    ]
    with engine.begin() as conn:
        found = conn.execute(
            subscribers.insert().returning(
                subscribers.c.id,
                subscribers.c.signature_id,
                subscribers.c.email,
                subscribers.c.campaign,
            ),
            rows,
        ).all()
    return sorted((Sub(*row) for row in found), key=lambda s: s.id)


def publish(
    engine: sa.Engine,
    *,
    title: str = "We met the minister",
    body: str = "It went **well**.\n\n<script>alert('x')</script>",
    email: bool = True,
    campaign: str = SLUG,
) -> int:
    with engine.begin() as conn:
        return publish_update(conn, campaign, title, body, email_subscribers=email)


def job_row(engine: sa.Engine, number: int, campaign: str = SLUG) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(fanout_jobs).where(
                fanout_jobs.c.campaign == campaign, fanout_jobs.c.update_number == number
            )
        ).first()


def wait_for_job(engine: sa.Engine, number: int, status: str = "done", timeout: float = 120) -> Any:
    def reached() -> Any:
        row = job_row(engine, number)
        return row if row is not None and row.status == status else None

    return wait_until(reached, timeout, 0.2, f"update #{number}'s fan-out to be {status}")


def delivery_states(engine: sa.Engine, number: int) -> dict[int, str]:
    """subscriber id → delivery state, for one update."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.subscriber_id, deliveries.c.state)
            .join(fanout_jobs, fanout_jobs.c.id == deliveries.c.job_id)
            .where(fanout_jobs.c.campaign == SLUG, fanout_jobs.c.update_number == number)
        ).all()
    return {r.subscriber_id: r.state for r in rows}


def copies_of(caught: list[Any], number: int, campaign: str = SLUG) -> list[Any]:
    prefix = f"<update.{campaign}.{number}."
    return [c for c in caught if str(c.message["Message-ID"]).startswith(prefix)]


def message_id_counts(caught: list[Any], number: int) -> Counter[str]:
    return Counter(str(c.message["Message-ID"]) for c in copies_of(caught, number))


def message_id_for(sub: Sub, number: int, mail_domain: str = "dearmp.invalid") -> str:
    return f"<update.{sub.campaign}.{number}.{sub.signature_id}@{mail_domain}>"


LINK_RE = re.compile(r"<(https?://[^>]+/unsubscribe/[^>]+)>")


def unsubscribe_link(message: Any) -> str:
    """The web address from a copy's List-Unsubscribe header."""
    match = LINK_RE.search(str(message["List-Unsubscribe"]))
    assert match, message["List-Unsubscribe"]
    return match.group(1)


def one_click(url: str) -> httpx.Response:
    """What a mail provider does for RFC 8058: a POST with no cookies and no CSRF token."""
    with httpx.Client(timeout=30) as client:
        return client.post(url, data={"List-Unsubscribe": "One-Click"})


def is_subscribed(engine: sa.Engine, sub: Sub) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.select(subscribers.c.subscribed).where(subscribers.c.id == sub.id)
            ).scalar_one()
        )
