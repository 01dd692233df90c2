"""Helpers for the staff pages' tests: staff accounts, signing in, and figures to chart.

Factories take keyword-only arguments. ``chart_signatures`` writes rows spread over two days
straight into the tables (a real journey cannot be back-dated), in the one vocabulary of
``shared.states`` that the tables' CHECK constraints enforce; tests of what the handlers write
drive the handlers (tests/e2e/test_journey_counts.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.intake.admin.accounts import add_staff
from services.intake.admin.models import staff
from services.intake.models import help_requests, signatures
from services.mailer.models import letters
from shared.states import LetterState, SignatureStatus
from tests.support import csrf_token_in

CAMPAIGN = "guardians-for-children"
STAFF_EMAIL = "organiser@example.org"
STAFF_PASSWORD = "correct horse battery staple"
SENT, FAILED = LetterState.SENT, LetterState.FAILED


def make_staff(
    engine: sa.Engine, *, email: str = STAFF_EMAIL, password: str = STAFF_PASSWORD
) -> str:
    add_staff(engine, email, password)
    return email


def login(client: Any, *, email: str = STAFF_EMAIL, password: str = STAFF_PASSWORD) -> Any:
    """Sign in through the login form; returns the response to the POST (not followed)."""
    page = client.get("/admin/login")
    assert page.status_code == 200, page.text
    return client.post(
        "/admin/login",
        data={"csrf_token": csrf_token_in(page.text), "email": email, "password": password},
        follow_redirects=False,
    )


def csrf_for(client: Any, path: str = "/admin") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return csrf_token_in(page.text)


def make_signature_row(
    *,
    campaign: str = CAMPAIGN,
    created_at: datetime,
    confirmed_at: datetime | None = None,
    status: SignatureStatus | None = None,
    constituency: tuple[str, str] | None = ("E14001063", "Aldershot"),
    email: str | None = None,
) -> dict[str, Any]:
    email = email or f"supporter-{uuid.uuid4().hex[:10]}@example.org"
    return {
        "id": uuid.uuid4(),
        "campaign": campaign,
        "first_name": "Jo",
        "last_name": "Bloggs",
        "email": email,
        "email_normalised": email.lower(),
        "postcode": "GU11 1AA",
        "address_lines": ["1 Test Street", "Aldershot"],
        "status": status or (SignatureStatus.SENT if confirmed_at else SignatureStatus.PENDING),
        "constituency_code": constituency[0] if confirmed_at and constituency else None,
        "constituency_name": constituency[1] if confirmed_at and constituency else None,
        "created_at": created_at,
        "confirmed_at": confirmed_at,
    }


def chart_signatures(
    engine: sa.Engine, *, campaign: str = CAMPAIGN, now: datetime | None = None
) -> int:
    """Signatures spread over the last two days, in a daily rhythm, most of them confirmed within
    the hour, in two constituencies; and letters in every state. Returns how many signatures."""
    now = now or datetime.now(UTC)
    rows = []
    for hours_ago in range(47, -1, -1):
        at = now - timedelta(hours=hours_ago)
        busy = 2 + (9 if 8 <= at.hour <= 21 else 0) + (hours_ago % 5)
        for i in range(busy):
            # Within the same clock hour as ``at``, so the oldest hour never slips out of the
            # chart's 48-hour window whatever the minute the test runs at.
            created = max(
                at - timedelta(minutes=i % 50), at.replace(minute=0, second=0, microsecond=0)
            )
            confirmed = created + timedelta(minutes=20) if i % 4 else None
            place = ("E14001465", "Sevenoaks") if i % 3 == 0 else ("E14001063", "Aldershot")
            rows.append(
                make_signature_row(
                    campaign=campaign,
                    created_at=created,
                    confirmed_at=min(confirmed, now) if confirmed else None,
                    constituency=place,
                )
            )
    with engine.begin() as conn:
        conn.execute(signatures.insert(), rows)
        confirmed_rows = [r for r in rows if r["confirmed_at"]]
        conn.execute(
            letters.insert(),
            [
                {
                    "signature_id": r["id"],
                    "purpose": "letter",
                    "campaign": campaign,
                    "state": state,
                    "message_id": f"<letter.{r['id']}@dearmp.invalid>",
                    "recipient": "alex.demo.mp@demo-parliament.invalid",
                    "subject": "Please act",
                    "created_at": r["confirmed_at"],
                    "sent_at": r["confirmed_at"] if state in (SENT, FAILED) else None,
                    "error": "550 5.1.1 mailbox unknown" if state == FAILED else None,
                }
                for n, r in enumerate(confirmed_rows)
                for state in [(SENT, SENT, SENT, SENT, SENT, FAILED, LetterState.CREATED)[n % 7]]
            ],
        )
    return len(rows)


def add_help_request(
    engine: sa.Engine,
    *,
    campaign: str = CAMPAIGN,
    name: str = "Sam Helper",
    email: str = "sam.helper@example.org",
    message: str = "The form says my postcode is wrong.",
) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                help_requests.insert()
                .values(
                    campaign=campaign,
                    name=name,
                    email=email,
                    message=message,
                    created_at=datetime.now(UTC),
                )
                .returning(help_requests.c.id)
            ).scalar_one()
        )


def staff_row(engine: sa.Engine, email: str = STAFF_EMAIL) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(staff).where(staff.c.email == email)).one()


def waiting_letter_row(
    *, signature_id: uuid.UUID, day: date, digest: bool, campaign: str = CAMPAIGN
) -> dict[str, Any]:
    """The mailer's row of a letter that waits (state ``queued``): for its day's digest
    (``digest``), or, past the daily cap, for a later day with its whole message."""
    return {
        "signature_id": signature_id,
        "purpose": "letter",
        "campaign": campaign,
        "state": "queued",
        "message_id": f"<letter.{signature_id}@test>",
        "recipient": "alex.demo.mp@demo-parliament.invalid",
        "subject": "A letter",
        "created_at": datetime.now(UTC),
        "due_day": day,
        **(
            {"digest_entry": {"name": "Jo Bloggs"}}
            if digest
            else {"held_message": "the whole message"}
        ),
    }
