"""Helpers for the "Did your MP reply?" tests: a letter already sent to an MP, as the mailer and
intake hold it after ``signature.resolved`` (a signature row, the letter's ``letters`` row and
the ``reply_questions`` row ``send_letter`` writes), without running resolver and mailer."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.intake.models import signatures
from services.mailer.models import letters, reply_questions
from shared.supporters import supporter_key
from tests.integration.admin_helpers import make_signature_row

CAMPAIGN = "guardians-for-children"
LINK_RE = re.compile(r"(https?://\S+/reply/\S+/(?:yes|not-yet|no))")


@dataclass(frozen=True)
class Written:
    signature_id: uuid.UUID
    email: str
    key: str


def letter_sent(
    engine: sa.Engine,
    secret: str,
    *,
    mp: str = "Real Member",
    constituency: tuple[str, str] = ("E14001063", "Aldershot"),
    language: str = "en",
    sent_ago: timedelta = timedelta(days=15),
    campaign: str = CAMPAIGN,
) -> Written:
    now = datetime.now(UTC)
    row = make_signature_row(
        campaign=campaign,
        created_at=now - sent_ago - timedelta(hours=1),
        confirmed_at=now - sent_ago,
        constituency=constituency,
    )
    key = supporter_key(secret, row["email"])
    row.update(target_name=mp, sent_at=now - sent_ago, supporter_key=key, language=language)
    with engine.begin() as conn:
        conn.execute(signatures.insert().values(**row))
        conn.execute(
            letters.insert().values(
                signature_id=row["id"],
                purpose="letter",
                campaign=campaign,
                state="sent",
                message_id=f"<letter.{row['id']}@dearmp.invalid>",
                recipient="real.member.mp@parliament.uk",
                subject="A letter",
                sends=1,
                created_at=now - sent_ago,
                sent_at=now - sent_ago,
                supporter_key=key,
            )
        )
        conn.execute(
            reply_questions.insert().values(
                signature_id=row["id"],
                campaign=campaign,
                supporter_key=key,
                email=row["email"],
                first_name="Jo",
                language=language,
                target_name=mp,
                target_kind="mp",
                signed_at=row["created_at"],
                created_at=now - sent_ago,
            )
        )
    return Written(row["id"], row["email"], key)


def question_of(engine: sa.Engine, signature_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(reply_questions).where(reply_questions.c.signature_id == signature_id)
        ).first()


def links_in(message: Any) -> dict[str, str]:
    text = message.get_body(("plain",)).get_content()
    found = {url.rsplit("/", 1)[1]: url for url in LINK_RE.findall(text)}
    assert set(found) == {"yes", "not-yet", "no"}, text
    return found


def asked(caught: list[Any], purpose: str = "reply_question") -> list[Any]:
    return [c for c in caught if str(c.message["Message-ID"]).strip().startswith(f"<{purpose}.")]
