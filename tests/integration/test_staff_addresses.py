"""An owner learns nothing about other organisations' accounts (issue 25): adding an address that
has an account elsewhere (another organisation's, an operator's) answers exactly as adding a new
one, and the account list shows it the same way. An address may have an account in several
organisations, each with its own password; the other organisation's account is untouched.
In-process against real Postgres."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from services.intake.admin.accounts import add_staff
from services.ops.cli import app as cli
from tests.integration.admin_helpers import STAFF_PASSWORD, csrf_for, login
from tests.integration.test_admin import client_for
from tests.integration.test_organisations import (
    A,
    B,
    client_as,
    two_organisations,
    without_tokens,
)

ALPHA_PASSWORD = "alpha's first password"


def staff_rows(engine: sa.Engine, email: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT organisation, role, password_hash FROM staff WHERE email = :e "
                "ORDER BY organisation NULLS FIRST"
            ),
            {"e": email},
        ).all()


def listed(page: str, email: str) -> str:
    """The account list's row for ``email``, with the address and the account's id blanked."""
    row = re.search(rf"<tr>\s*<td>{re.escape(email)}</td>.*?</tr>", page, re.S)
    assert row is not None, email
    return re.sub(r"/admin/accounts/\d+/", "/admin/accounts/N/", row.group(0).replace(email, "X"))


def test_adding_an_address_answers_the_same_whether_it_has_an_account_elsewhere(
    settings, engine
) -> None:
    two_organisations(engine)
    add_staff(engine, "ops@example.org", STAFF_PASSWORD)  # a platform operator
    beta_before = staff_rows(engine, "beta-viewer@example.org")
    owner = client_as(settings, engine, "alpha-owner@example.org")

    def add(email: str) -> Any:
        form = {
            "csrf_token": csrf_for(owner, "/admin/accounts"),
            "email": email,
            "role": "editor",
            "password": ALPHA_PASSWORD,
        }
        return owner.post("/admin/accounts", data=form, follow_redirects=False)

    answers = {
        "new": add("fresh@example.org"),
        "another organisation's": add(" Beta-Viewer@Example.org "),
        "an operator's": add("ops@example.org"),
    }
    first = answers["new"]
    for what, answer in answers.items():
        assert answer.status_code == first.status_code == 303, (what, answer.status_code)
        assert answer.headers["location"] == first.headers["location"], what
        assert answer.text == first.text, what
    page = without_tokens(owner.get("/admin/accounts").text)
    assert (
        listed(page, "fresh@example.org")
        == listed(page, "beta-viewer@example.org")
        == listed(page, "ops@example.org")
    )
    # The owner's page shows alpha's accounts only, never where else an address is.
    assert "beta" not in page.lower().replace("beta-viewer@example.org", "")

    # beta's account is untouched: its own password opens it, alpha's password opens alpha's.
    assert staff_rows(engine, "beta-viewer@example.org")[1:] == beta_before
    as_beta = client_for(settings, engine)
    assert login(as_beta, email="beta-viewer@example.org").status_code == 303
    assert as_beta.get(f"/admin/c/{B}").status_code == 200
    assert as_beta.get(f"/admin/c/{A}").status_code == 404
    as_alpha = client_for(settings, engine)
    done = login(as_alpha, email="beta-viewer@example.org", password=ALPHA_PASSWORD)
    assert done.status_code == 303
    assert as_alpha.get(f"/admin/c/{A}").status_code == 200
    assert as_alpha.get(f"/admin/c/{B}").status_code == 404
    # The operator's own password still opens the operator's account, with its powers.
    as_operator = client_for(settings, engine)
    assert login(as_operator, email="ops@example.org").status_code == 303
    assert as_operator.get("/admin/dlq").status_code == 200

    # An address already in this organisation: said so (the list shows it anyway).
    again = add("fresh@example.org")
    assert again.status_code == 400
    assert "That address already has an account in alpha" in again.text


def test_commands_say_which_account_when_an_address_has_several(engine, database_url) -> None:
    two_organisations(engine)
    add_staff(engine, "beta-viewer@example.org", ALPHA_PASSWORD, organisation="alpha")
    runner = CliRunner()
    env = {"DEARMP_DATABASE_URL": database_url}

    def run(*args: str, typed: str | None = None) -> Any:
        return runner.invoke(cli, list(args), input=typed, env=env)

    refusals = {
        ("staff", "remove", "beta-viewer@example.org"): (
            "beta-viewer@example.org has accounts in alpha, beta: say which with --org SLUG"
        ),
        ("staff", "add", "beta-viewer@example.org", "--password-stdin", "--update"): (
            "say which with --org SLUG"
        ),
        ("staff", "add", "beta-viewer@example.org", "--password-stdin"): (
            "a platform operator needs an address of its own"
        ),
        ("staff", "add", "beta-viewer@example.org", "--password-stdin", "--org", "beta"): (
            "already has an account in beta (use --update to set a new password)"
        ),
        ("staff", "remove", "beta-viewer@example.org", "--org", "gamma"): (
            "no staff account 'beta-viewer@example.org' in gamma"
        ),
        ("staff", "remove", "jo\x00@example.org"): "is not an email address",
    }
    for args, expected in refusals.items():
        result = run(*args, typed=f"{STAFF_PASSWORD}\n")
        assert result.exit_code != 0, args
        assert len(result.output.strip().splitlines()) == 1, (args, result.output)
        assert expected in result.output, (args, result.output)
    assert len(staff_rows(engine, "beta-viewer@example.org")) == 2

    new_password = "beta's new passphrase"
    updated = run(
        "staff", "add", "beta-viewer@example.org", "--password-stdin", "--update", "--org", "beta",
        typed=f"{new_password}\n",
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    removed = run("staff", "remove", "beta-viewer@example.org", "--org", "alpha")
    assert removed.exit_code == 0, removed.output
    assert [r.organisation for r in staff_rows(engine, "beta-viewer@example.org")] == ["beta"]
    # With one account left, the address alone says which.
    assert run("staff", "remove", "beta-viewer@example.org").exit_code == 0


def test_migration_0021_down_refuses_while_an_address_has_two_accounts(
    engine, database_url
) -> None:
    from alembic import command

    from shared.db import alembic_config, upgrade

    two_organisations(engine)
    add_staff(engine, "beta-viewer@example.org", ALPHA_PASSWORD, organisation="alpha")
    engine.dispose()
    config = alembic_config(database_url)
    try:
        command.downgrade(config, "0020")
    except RuntimeError as exc:
        assert "1 address(es) have more than one staff account" in str(exc)
    else:
        raise AssertionError("went below 0021 with an address in two organisations")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM staff WHERE email = 'beta-viewer@example.org' "
                "AND organisation = 'alpha'"
            )
        )
    command.downgrade(config, "0020")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO staff (email, password_hash, created_at, role, organisation) "
                    "VALUES ('beta-viewer@example.org', 'x', now(), 'viewer', 'alpha')"
                )
            )
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("0020 allowed one address twice")
    engine.dispose()
    upgrade(database_url)
    add_staff(engine, "beta-viewer@example.org", ALPHA_PASSWORD, organisation="alpha")
    assert len(staff_rows(engine, "beta-viewer@example.org")) == 2
