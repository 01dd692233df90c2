"""The resolver worker with the remote backend: while every backend is down signatures wait and
all resolve after recovery; a vacant seat holds the letter until the new MP is in post."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.fakes import FakeParliament, member
from tests.support import (
    confirm_email,
    letters_by_purpose,
    make_signature,
    post_signatures,
    wait_until,
)


@pytest.fixture
def fake() -> Iterator[FakeParliament]:
    server = FakeParliament(
        postcodes={
            "TN13 1AA": ("Sevenoaks", "E14001465"),
            "LS2 9JT": ("Leeds Central and Headingley", "E14001330"),
        },
        seats={"Sevenoaks": member(4001, "Laura Example"), "Leeds Central and Headingley": None},
        contacts={
            4001: [
                {
                    "type": "Parliamentary office",
                    "isPreferred": True,
                    "email": "laura.example.mp@parliament.uk",
                }
            ]
        },
    ).start()
    yield server
    server.stop()


@pytest.fixture
def remote_env(service_env: dict[str, str], fake: FakeParliament) -> None:
    service_env.update(
        {
            "DEARMP_RESOLVER_BACKENDS": "postcodes_io",
            "DEARMP_POSTCODES_IO_URL": fake.url,
            "DEARMP_MEMBERS_API_URL": fake.url,
            "DEARMP_VACANT_RETRY_SECONDS": "1",
            "DEARMP_HELD_SWEEP_SECONDS": "0.5",
        }
    )


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def _sign_and_confirm(system, mail, n: int, postcode: str) -> None:
    post_signatures(
        system.base_url,
        "guardians-for-children",
        [make_signature(postcode=postcode) for _ in range(n)],
    )
    for caught in mail.handler.wait_for(n, timeout=60)[:n]:
        assert confirm_email(caught.message).status_code == 200


def test_signatures_wait_while_the_apis_are_down_then_all_resolve(
    remote_env, fake, system, mail, engine
) -> None:
    system.start()
    fake.fail(503, times=10_000)
    _sign_and_confirm(system, mail, 5, "TN13 1AA")
    wait_until(
        lambda: fake.failures_left < 10_000 - 10, 30, message="the resolver to keep retrying"
    )
    assert _count(engine, "SELECT count(*) FROM resolutions") == 0
    assert "letter" not in letters_by_purpose(mail.messages)
    fake.failures_left = 0  # the APIs recover
    mail.handler.wait_for(15, timeout=60)  # confirmations, letters and the supporters' copies
    letters = letters_by_purpose(mail.messages)["letter"]
    assert len(letters) == 5 and len(set(letters)) == 5
    assert all(
        c.message["X-DearMP-Intended-Recipient"] == "laura.example.mp@parliament.uk"
        for c in mail.messages
        if "letter." in str(c.message["Message-ID"])
    )


def test_a_vacant_seat_holds_the_letter_until_there_is_an_mp(
    remote_env, fake, system, mail, engine
) -> None:
    system.start()
    _sign_and_confirm(system, mail, 1, "LS2 9JT")
    wait_until(
        lambda: _count(engine, "SELECT count(*) FROM held_signatures") == 1,
        30,
        message="the signature to be held",
    )
    wait_until(
        lambda: _count(engine, "SELECT max(attempts) FROM held_signatures") >= 2,
        30,
        message="the held signature to be tried again",
    )
    assert "letter" not in letters_by_purpose(mail.messages)
    # The supporter is told once, and the thank-you page says the same.
    held = mail.handler.wait_for(2, timeout=30)[1]
    assert held.message["Subject"].startswith("Your letter is waiting for a new MP")
    assert "Leeds Central and Headingley has no MP" in str(held.message.get_body(("plain",)))
    wait_until(
        lambda: _count(engine, "SELECT count(*) FROM signatures WHERE status = 'held'") == 1,
        20,
        message="intake to hear signature.held",
    )
    assert len(letters_by_purpose(mail.messages)["held"]) == 1
    # The by-election: a new member with an email address.
    fake.contacts[4010] = [
        {
            "type": "Parliamentary office",
            "isPreferred": True,
            "email": "new.member.mp@parliament.uk",
        }
    ]
    fake.seats["Leeds Central and Headingley"] = member(4010, "New Member")
    mail.handler.wait_for(4, timeout=60)  # the letter, then the copy
    letter = [c for c in mail.messages if "letter." in str(c.message["Message-ID"])]
    assert len(letter) == 1
    assert len(letters_by_purpose(mail.messages)["held"]) == 1
    assert letter[0].message["X-DearMP-Intended-Recipient"] == "new.member.mp@parliament.uk"
    assert _count(engine, "SELECT count(*) FROM held_signatures") == 0
