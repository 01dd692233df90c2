"""Did your MP reply? the mailer's question and its one reminder go exactly once, never to
someone who left the campaign's emails or was erased; intake's pages record the answer behind a
button, and a forged or expired link gives a clear page, never a 500 (real Postgres and SMTP
catcher; the sweep runs in-process)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.models import reply_answers
from services.mailer.handlers import CLOSE_QUESTION, make_deps
from services.mailer.models import letters
from services.mailer.replies import send_due_reply_questions
from services.mailer.retention import erase_supporter
from services.updates.models import subscribers
from shared.outbox import outbox
from shared.replies import make_reply_token
from tests.integration.reply_helpers import CAMPAIGN, asked, letter_sent, links_in, question_of
from tests.support import csrf_token_in

pytestmark = pytest.mark.integration


def _deps(settings, engine, **changes):
    tuned = settings.model_copy(
        update={"reply_question_after_seconds": 0, "reply_reminder_after_seconds": 0, **changes}
    )
    return make_deps(tuned, engine)


def test_one_question_then_one_reminder_each_exactly_once(settings, engine, mail) -> None:
    me = letter_sent(engine, settings.secret_key)
    later = letter_sent(engine, settings.secret_key, sent_ago=timedelta(minutes=5))
    deps = _deps(settings, engine, reply_question_after_seconds=3600)
    # Two sweepers at once (two replicas): one question between them.
    results: list[int] = []
    sweepers = [
        threading.Thread(target=lambda: results.append(send_due_reply_questions(deps)))
        for _ in range(2)
    ]
    for t in sweepers:
        t.start()
    for t in sweepers:
        t.join()
    [question] = asked(mail.handler.wait_for(1, timeout=20))
    assert sorted(results) == [0, 1]
    message = question.message
    assert message["Subject"] == "Has your MP replied?"
    assert message["X-DearMP-Intended-Recipient"] == me.email
    text = message.get_body(("plain",)).get_content()
    assert "to Real Member" in text and "Dear Jo," in text
    assert links_in(message)["yes"].startswith(f"{settings.base_url}/reply/")
    assert question_of(engine, later.signature_id).asked_at is None  # sent 5 minutes ago

    # The reminder, once: reminder_after 0 makes it due at once.
    deps = _deps(settings, engine, reply_question_after_seconds=3600)
    for _ in range(3):
        send_due_reply_questions(deps)
    time.sleep(0.3)
    assert len(asked(mail.messages)) == 1
    [reminder] = asked(mail.messages, "reply_reminder")
    assert reminder.message["Subject"] == "Reminder: Has your MP replied?"
    row = question_of(engine, me.signature_id)
    assert row.reminded_at and row.closed_at and row.email == ""  # blanked: nothing more goes
    with engine.connect() as conn:
        purposes = conn.execute(
            sa.select(letters.c.purpose, letters.c.sends).where(
                letters.c.signature_id == me.signature_id, letters.c.purpose.like("reply_%")
            )
        ).all()
    assert sorted(purposes) == [("reply_question", 1), ("reply_reminder", 1)]


def test_in_the_supporters_language(settings, engine, mail) -> None:
    letter_sent(engine, settings.secret_key, language="cy")
    send_due_reply_questions(_deps(settings, engine))
    [question] = asked(mail.handler.wait_for(1, timeout=20))
    assert question.message["Subject"] == "A yw eich AS wedi ateb?"


def test_a_yes_or_no_answer_means_no_reminder(settings, engine, mail) -> None:
    told = letter_sent(engine, settings.secret_key)
    deps = _deps(settings, engine, reply_reminder_after_seconds=3600)
    send_due_reply_questions(deps)
    mail.handler.wait_for(1, timeout=20)
    with engine.begin() as conn:  # what the mailer does with reply.answered "yes"
        conn.exec_driver_sql(CLOSE_QUESTION, {"signature_id": told.signature_id})
    send_due_reply_questions(_deps(settings, engine))
    time.sleep(0.3)
    assert asked(mail.messages, "reply_reminder") == []


def test_nothing_for_who_unsubscribed_or_was_erased(settings, engine, mail) -> None:
    left = letter_sent(engine, settings.secret_key)
    erased = letter_sent(engine, settings.secret_key)
    late = letter_sent(engine, settings.secret_key)  # erased, and the row still there
    stays = letter_sent(engine, settings.secret_key)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            subscribers.insert().values(
                campaign=CAMPAIGN,
                signature_id=left.signature_id,
                email=left.email,
                email_normalised=left.email,
                supporter_key=left.key,
                first_name="Jo",
                subscribed=False,
                created_at=now,
                unsubscribed_at=now,
            )
        )
        erase_supporter(conn, erased.key, now)
        conn.execute(
            sa.text("INSERT INTO erased_supporters (supporter_key, erased_at) VALUES (:k, :at)"),
            {"k": late.key, "at": now},
        )
    deps = _deps(settings, engine)
    send_due_reply_questions(deps)
    send_due_reply_questions(deps)
    caught = asked(mail.handler.wait_for(1, timeout=20))
    time.sleep(0.3)
    caught = asked(mail.messages)
    assert [c.message["X-DearMP-Intended-Recipient"] for c in caught] == [stays.email]
    assert asked(mail.messages, "reply_reminder") != []  # the one who stayed: reminded
    assert question_of(engine, erased.signature_id) is None
    assert question_of(engine, left.signature_id).closed_at is not None
    assert question_of(engine, late.signature_id).closed_at is not None


@pytest.fixture
def client(settings, engine):
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def test_the_answer_is_recorded_by_the_button_not_the_link(settings, engine, client) -> None:
    me = letter_sent(engine, settings.secret_key)
    token = make_reply_token(settings.secret_key, me.signature_id)
    page = client.get(f"/reply/{token}/not-yet")
    assert page.status_code == 200 and "Has Real Member replied?" in page.text
    with engine.connect() as conn:
        assert conn.execute(sa.select(reply_answers)).first() is None  # a scanner's GET: nothing
    done = client.post(
        f"/reply/{token}/not-yet",
        data={"csrf_token": csrf_token_in(page.text)},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "Thank you for telling us" in done.text
    assert "Paste the reply" not in done.text
    # They change their mind: yes, and paste the reply (private: the box is not ticked).
    page = client.get(f"/reply/{token}/yes")
    done = client.post(
        f"/reply/{token}/yes",
        data={"csrf_token": csrf_token_in(page.text)},
        follow_redirects=True,
    )
    assert "Paste the reply" in done.text
    saved = client.post(
        f"/reply/{token}/text",
        data={"csrf_token": csrf_token_in(done.text), "reply_text": "Thank you\x00 for writing."},
    )
    assert saved.status_code == 200 and "We have saved the reply." in saved.text
    with engine.connect() as conn:
        row = conn.execute(sa.select(reply_answers)).one()
        events = conn.execute(
            sa.select(outbox.c.routing_key).where(outbox.c.routing_key == "reply.answered")
        ).all()
    assert (row.answer, row.reply_text, row.share_reply) == ("yes", "Thank you for writing.", False)
    assert len(events) == 2
    # Without the form's token: refused, nothing changed.
    assert client.post(f"/reply/{token}/no", data={}).status_code == 400


@pytest.mark.parametrize("kind", ["forged", "mangled", "expired", "erased", "bad-answer"])
def test_a_bad_link_gives_a_clear_page_never_a_500(settings, engine, client, kind) -> None:
    me = letter_sent(engine, settings.secret_key)
    token = make_reply_token(settings.secret_key, me.signature_id)
    answer = "yes"
    if kind == "forged":
        token = make_reply_token("another-secret-0123456789", me.signature_id)
    elif kind == "mangled":
        token = token[:-3] + "xyz"
    elif kind == "expired":
        with mock.patch("time.time", return_value=time.time() - 61 * 24 * 3600):
            token = make_reply_token(settings.secret_key, me.signature_id)
    elif kind == "erased":
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE signatures SET first_name = '[erased]'"))
    else:
        answer = "maybe"
    url = f"/reply/{token}/{answer}"
    for response in (client.get(url), client.post(url)):
        if kind == "bad-answer":
            assert response.status_code == 404
            continue
        assert response.status_code == 400, response.text
        assert "This link does not work" in response.text
        if kind == "expired":
            assert "last 60 days" in response.text
    if kind != "bad-answer":
        assert client.get(f"/reply/{token}/thanks").status_code == 400
        assert client.post(f"/reply/{token}/text", data={"reply_text": "x"}).status_code == 400
    with engine.connect() as conn:
        assert conn.execute(sa.select(reply_answers)).first() is None
