"""Issue 26: the subject-access record (``dearmp supporters export EMAIL`` and the staff page
``/admin/supporters``) holds the person's answers to "Has your MP replied?" and the reply they
pasted; after erasure the pasted text is gone and the record finds nothing of theirs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.handlers import HANDLERS
from services.intake.models import reply_answers, signatures
from shared.handling import Dispatcher
from shared.messages import Envelope, SupporterErasureRequested
from shared.supporters import supporter_key
from tests.integration.admin_helpers import login, make_signature_row, make_staff
from tests.integration.mailer_helpers import dearmp
from tests.support import csrf_token_in

PASTED = "Thank you for writing. I have raised guardianship with the minister. Yours, Alex Demo MP"


def _signed_and_answered(engine: sa.Engine, settings) -> dict:
    now = datetime.now(UTC)
    theirs = make_signature_row(
        created_at=now - timedelta(days=30),
        confirmed_at=now - timedelta(days=30),
        email="ria.reply@example.org",
    )
    other = make_signature_row(created_at=now, confirmed_at=now)
    for row in (theirs, other):
        row["supporter_key"] = supporter_key(settings.secret_key, row["email"])
    with engine.begin() as conn:
        conn.execute(signatures.insert(), [theirs, other])
        conn.execute(
            reply_answers.insert(),
            [
                {
                    "signature_id": theirs["id"],
                    "campaign": theirs["campaign"],
                    "answer": "yes",
                    "answered_at": now,
                    "reply_text": PASTED,
                    "share_reply": True,
                    "reply_pasted_at": now,
                },
                {
                    "signature_id": other["id"],
                    "campaign": other["campaign"],
                    "answer": "yes",
                    "answered_at": now,
                    "reply_text": "Someone else's reply.",
                    "share_reply": False,
                    "reply_pasted_at": now,
                },
            ],
        )
    return theirs


def _export(env: dict[str, str], email: str) -> dict:
    result = dearmp(env, "supporters", "export", email, "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_the_export_and_the_staff_page_hold_reply_answers_until_erasure(
    settings, engine, service_env
) -> None:
    theirs = _signed_and_answered(engine, settings)

    record = _export(service_env, "Ria.Reply@example.org")
    [answer] = record["reply_answers"]
    assert answer["signature_id"] == str(theirs["id"])
    assert (answer["answer"], answer["reply_text"], answer["share_reply"]) == ("yes", PASTED, True)
    assert "Someone else's reply." not in json.dumps(record)
    readable = dearmp(service_env, "supporters", "export", theirs["email"])
    assert "reply answers: 1" in readable.stdout and PASTED in readable.stdout

    make_staff(engine)
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    login(client)
    page = client.get("/admin/supporters")
    shown = client.post(
        "/admin/supporters",
        data={"csrf_token": csrf_token_in(page.text), "email": theirs["email"]},
    )
    assert shown.status_code == 200
    assert "Reply answers (1)" in shown.text and PASTED in shown.text

    # Erasure: intake's handler, as its consumer runs it.
    key = supporter_key(settings.secret_key, theirs["email"])
    Dispatcher("intake", engine, HANDLERS)(Envelope.wrap(SupporterErasureRequested(key=key)))
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(reply_answers).where(reply_answers.c.signature_id == theirs["id"])
        ).one()
    assert (row.reply_text, row.share_reply, row.reply_pasted_at) == (None, False, None)
    after = _export(service_env, theirs["email"])
    assert all(rows == [] for rows in after.values()), after
    assert PASTED not in json.dumps(after)
