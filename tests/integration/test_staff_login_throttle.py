"""Wrong passwords at /admin/login (issue 25): they slow down the place they come from, for that
address, and never lock the account: a stranger typing an operator's address from their own
machine cannot keep the operator out. In-process against real Postgres; clients at different
addresses are TestClients with different client hosts, replicas are separate apps."""

from __future__ import annotations

import re
import threading
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from services.intake.admin.accounts import add_staff
from services.intake.admin.auth import COOKIE
from services.intake.app import create_app
from services.ops.cli import app as cli
from shared.config import Settings
from tests.integration.admin_helpers import STAFF_PASSWORD, login
from tests.support import csrf_token_in

OPERATOR = "ops@example.org"
STRANGER, HOME, OFFICE = "203.0.113.7", "198.51.100.20", "192.0.2.44"
DEADLINE = 60  # seconds a thread may take before the test calls it stuck


def client_at(settings: Settings, engine: sa.Engine, address: str) -> TestClient:
    """A browser at ``address``; each one its own app, as another replica would be."""
    return TestClient(
        create_app(settings, engine), raise_server_exceptions=False, client=(address, 40000)
    )


def message(answer: Any) -> str:
    found = re.search(r'<p id="email-error"[^>]*>(.*?)</p>', answer.text, re.S)
    assert found is not None, answer.text[:500]
    # Without the "Error:" said only to screen readers.
    return " ".join(re.sub(r"<span[^>]*>Error:</span>", "", found.group(1)).split())


def days_pass(engine: sa.Engine) -> None:
    """Move every counted wrong password a day into the past (the windows it was counted in)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE rate_limits SET window_start = window_start - interval '2 days' "
                "WHERE key LIKE 'staff-login:%'"
            )
        )


def test_a_stranger_cannot_lock_an_operator_out(settings, engine, database_url) -> None:
    add_staff(engine, OPERATOR, STAFF_PASSWORD)  # a platform operator
    stranger = client_at(settings, engine, STRANGER)
    answers = [login(stranger, email=OPERATOR, password=f"guess {n}") for n in range(25)]
    # The operator, from anywhere else, signs in at once.
    home = login(client_at(settings, engine, HOME), email=OPERATOR)
    assert home.status_code == 303 and home.headers["set-cookie"].startswith(f"{COOKIE}=")

    # Five tries, then this address from this place waits; the page says for how long.
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert {a.status_code for a in answers[5:]} == {429}
    waiting = message(answers[5])
    assert re.fullmatch(
        r"Too many wrong passwords for this address from here\. Try again in \d+ minutes?\. "
        r"Elsewhere, the right password still works\.",
        waiting,
    ), waiting
    # Even the right password waits there: a guess that happens to be right is not let in.
    assert login(stranger, email=OPERATOR).status_code == 429
    assert login(client_at(settings, engine, STRANGER), email=OPERATOR).status_code == 429

    # The operator's address is no different from one with no account: the same words, the
    # same statuses, so the waits tell nobody which addresses have accounts.
    other = client_at(settings, engine, STRANGER)
    unknown = [login(other, email="nobody@example.org", password=f"g {n}") for n in range(6)]
    assert [a.status_code for a in unknown] == [401] * 5 + [429]
    assert message(unknown[0]) == message(answers[0])
    assert re.sub(r"\d+", "N", message(unknown[5])) == re.sub(r"\d+", "N", waiting)

    # When the windows have passed, the place may try again.
    days_pass(engine)
    assert login(stranger, email=OPERATOR).status_code == 303


def test_one_place_trying_many_addresses_waits_and_parallel_guesses_are_counted(
    settings, engine
) -> None:
    add_staff(engine, OPERATOR, STAFF_PASSWORD)
    sprayer = client_at(settings, engine, STRANGER)
    for n in range(30):  # 30 addresses, 1 wrong password each: no address reached its own limit
        assert login(sprayer, email=f"person{n}@example.org", password="guess").status_code == 401
    spent = login(sprayer, email=OPERATOR)
    assert spent.status_code == 429
    assert message(spent).startswith("Too many wrong passwords from here. Try again in ")
    assert login(client_at(settings, engine, OFFICE), email=OPERATOR).status_code == 303

    # Ten guesses at once for one address from one place (on ten replicas): five are tried,
    # the others wait; none slips past the count.
    days_pass(engine)
    barrier = threading.Barrier(10, timeout=DEADLINE)
    statuses: list[int] = []

    def guess(n: int) -> None:
        client = client_at(settings, engine, OFFICE)
        page = client.get("/admin/login")
        form = {"csrf_token": csrf_token_in(page.text), "email": OPERATOR, "password": f"x{n}"}
        barrier.wait()
        statuses.append(client.post("/admin/login", data=form).status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a login is stuck"
    assert sorted(statuses) == [401] * 5 + [429] * 5, statuses


def test_an_operator_unlocks_an_account_from_the_command_line(settings, engine, database_url):
    add_staff(engine, "editor@example.org", STAFF_PASSWORD, organisation="dear-mp", role="owner")
    office = client_at(settings, engine, OFFICE)
    for n in range(5):
        login(office, email="Editor@Example.org", password=f"typo {n}")
    assert login(office, email="editor@example.org").status_code == 429

    runner = CliRunner()
    env = {"DEARMP_DATABASE_URL": database_url, "DEARMP_SECRET_KEY": settings.secret_key}
    unlocked = runner.invoke(cli, ["staff", "unlock", " Editor@Example.org "], env=env)
    assert unlocked.exit_code == 0, unlocked.output
    assert unlocked.output.strip() == (
        "unlocked staff account editor@example.org (waits cleared from 1 place(s))"
    )
    assert login(office, email="editor@example.org").status_code == 303
    # An address with no account: one line, non-zero; nothing else happens.
    for address, expected in (
        ("nobody@example.org", "no staff account 'nobody@example.org'"),
        ("jo\x00@example.org", "is not an email address"),
    ):
        missing = runner.invoke(cli, ["staff", "unlock", address], env=env)
        assert missing.exit_code != 0 and len(missing.output.strip().splitlines()) == 1
        assert expected in missing.output, missing.output

    # A new password set by an operator clears the waits too.
    for n in range(5):
        login(office, email="editor@example.org", password=f"typo {n}")
    new_password = "a brand new passphrase"
    updated = runner.invoke(
        cli,
        ["staff", "add", "editor@example.org", "--password-stdin", "--update"],
        input=f"{new_password}\n",
        env=env,
    )
    assert updated.exit_code == 0, updated.output
    assert "unlocked it" in updated.output
    assert login(office, email="editor@example.org", password=new_password).status_code == 303
