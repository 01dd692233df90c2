"""An organisation keeps an owner (issue 25): two owners removing each other at the same moment
leave one of them, never none; the last owner cannot be removed from the staff page or the CLI.
Real Postgres, real threads: each round opens two transactions that both read the owners before
either removes one."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from services.intake.admin.accounts import StaffError, add_staff, remove_staff
from services.ops.cli import app
from shared.organisations import checked, save_organisation
from tests.integration.admin_helpers import STAFF_PASSWORD, csrf_for
from tests.integration.test_organisations import client_as

ROUNDS = 6
DEADLINE = 30  # seconds: how long a thread may take before the test calls it stuck


def organisation_with_owners(engine: sa.Engine, slug: str, *emails: str) -> None:
    with engine.begin() as conn:
        org = checked(slug=slug, name=slug.title(), privacy_url="https://example.org/privacy")
        save_organisation(conn, org)
    for email in emails:
        add_staff(engine, email, STAFF_PASSWORD, organisation=slug, role="owner")


def owners_of(engine: sa.Engine, slug: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT email FROM staff WHERE organisation = :o AND role = 'owner' "
                    "ORDER BY email"
                ),
                {"o": slug},
            ).scalars()
        )


def race(engine: sa.Engine, slug: str, removals: list[tuple[str, str]]) -> dict[str, Any]:
    """Each (who, whom): ``who``'s transaction reads the organisation's owners, waits until the
    other transaction has read them too, then removes ``whom``. Returns what each got: the
    address removed, None, or the StaffError."""
    barrier = threading.Barrier(len(removals), timeout=DEADLINE)
    outcome: dict[str, Any] = {}

    def remove(who: str, whom: str) -> None:
        try:
            with engine.begin() as conn:
                seen = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM staff WHERE organisation = :o AND role = 'owner'"
                    ),
                    {"o": slug},
                ).scalar_one()
                assert seen == 2, seen
                barrier.wait()  # both have read two owners; neither has written
                outcome[who] = remove_staff(conn, email=whom, organisation=slug)
        except Exception as exc:  # recorded, and asserted on by the test
            outcome[who] = exc

    threads = [threading.Thread(target=remove, args=pair) for pair in removals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a removal is stuck"
    return outcome


def test_two_owners_removing_each_other_at_once_leave_one_owner(engine) -> None:
    for round_ in range(ROUNDS):
        slug = f"race-{round_}"
        a, b = f"a{round_}@example.org", f"b{round_}@example.org"
        organisation_with_owners(engine, slug, a, b)
        outcome = race(engine, slug, [(a, b), (b, a)])
        left = owners_of(engine, slug)
        assert len(left) == 1, (round_, outcome, left)
        # The one still there removed the other; the other was told why it could not.
        (survivor,) = left
        loser = b if survivor == a else a
        assert outcome[survivor] == loser, outcome
        refused = outcome[loser]
        assert isinstance(refused, StaffError), outcome
        assert str(refused) == f"{survivor} is the last owner of {slug}: add another owner first"


def test_the_last_owner_stays_on_the_staff_page_and_in_the_cli(settings, engine, database_url):
    organisation_with_owners(engine, "solo", "only@example.org", "second@example.org")
    add_staff(engine, "ops@example.org", STAFF_PASSWORD)  # a platform operator
    add_staff(engine, "viewer@example.org", STAFF_PASSWORD, organisation="solo", role="viewer")
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT email, id FROM staff")).all())

    owner = client_as(settings, engine, "only@example.org")
    token = csrf_for(owner, "/admin/accounts")
    gone = owner.post(
        f"/admin/accounts/{ids['second@example.org']}/remove",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    # An operator on the staff page: refused, with the reason, and nothing changes.
    operator = client_as(settings, engine, "ops@example.org")
    refused = operator.post(
        f"/admin/accounts/{ids['only@example.org']}/remove",
        data={"csrf_token": csrf_for(operator, "/admin/accounts")},
    )
    assert refused.status_code == 400
    assert "only@example.org is the last owner of solo: add another owner first" in refused.text
    assert owners_of(engine, "solo") == ["only@example.org"]
    # Other accounts of the organisation still go.
    viewer = operator.post(
        f"/admin/accounts/{ids['viewer@example.org']}/remove",
        data={"csrf_token": csrf_for(operator, "/admin/accounts")},
        follow_redirects=False,
    )
    assert viewer.status_code == 303

    runner = CliRunner()
    env = {"DEARMP_DATABASE_URL": database_url}
    cli = runner.invoke(app, ["staff", "remove", "only@example.org"], env=env)
    assert cli.exit_code != 0
    assert cli.output.strip() == (
        "dearmp: only@example.org is the last owner of solo: add another owner first"
    )
    assert owners_of(engine, "solo") == ["only@example.org"]
    # With another owner, it goes.
    add_staff(engine, "next@example.org", STAFF_PASSWORD, organisation="solo", role="owner")
    done = runner.invoke(app, ["staff", "remove", "only@example.org"], env=env)
    assert done.exit_code == 0, done.output
    assert owners_of(engine, "solo") == ["next@example.org"]
