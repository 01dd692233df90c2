"""organisations: who runs each campaign, staff accounts' organisation and role, and the
supporter's separate opt-in to the organisation's own mailing list

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 10:00:00

Every campaign goes to a default organisation made here ("dear-mp"), and every existing staff
account becomes a platform operator (it could see everything before), so nothing changes for
them until an operator adds organisations and their accounts (``dearmp orgs``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As of this revision (a migration keeps its own copy: they must not change later).
DEFAULT = "dear-mp"
ROLES = ("operator", "owner", "editor", "viewer")


def check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _text(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Text(), server_default="", nullable=False)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _text("logo_url"),
        sa.Column("colour", sa.String(length=7), server_default="", nullable=False),
        _text("website"),
        _text("privacy_url"),
        _text("privacy_text"),
        sa.Column("sender_name", sa.Text(), nullable=False),
        _text("list_opt_in"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_organisations")),
    )
    op.execute(
        "INSERT INTO organisations (slug, name, sender_name, privacy_url, created_at) "
        f"VALUES ('{DEFAULT}', 'Dear MP', 'Dear MP', '/privacy', now())"
    )
    op.add_column(
        "campaigns",
        sa.Column(
            "organisation", sa.String(length=100), server_default=DEFAULT, nullable=False
        ),
    )
    op.create_foreign_key(
        op.f("fk_campaigns_organisation_organisations"),
        "campaigns",
        "organisations",
        ["organisation"],
        ["slug"],
        onupdate="CASCADE",
    )
    op.create_index("ix_campaigns_organisation", "campaigns", ["organisation"])

    # Existing accounts could see everything: they become platform operators. The default is
    # only for them; new rows must say their role.
    op.add_column(
        "staff", sa.Column("role", sa.String(length=10), server_default="operator", nullable=False)
    )
    op.alter_column("staff", "role", server_default=None)
    op.add_column("staff", sa.Column("organisation", sa.String(length=100), nullable=True))
    op.create_foreign_key(
        op.f("fk_staff_organisation_organisations"),
        "staff",
        "organisations",
        ["organisation"],
        ["slug"],
        onupdate="CASCADE",
        ondelete="CASCADE",
    )
    op.create_index("ix_staff_organisation", "staff", ["organisation"])
    op.create_check_constraint(op.f("ck_staff_role"), "staff", check("role", ROLES))
    op.create_check_constraint(
        op.f("ck_staff_role_organisation"),
        "staff",
        "(role = 'operator') = (organisation IS NULL)",
    )

    op.add_column("signatures", sa.Column("org_opt_in_wording", sa.Text(), nullable=True))
    op.add_column(
        "signatures", sa.Column("org_opt_in_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("signatures", "org_opt_in_at")
    op.drop_column("signatures", "org_opt_in_wording")
    # Accounts of an organisation could see less than everything: they go, rather than
    # becoming operators.
    op.execute("DELETE FROM staff WHERE organisation IS NOT NULL")
    op.drop_constraint(op.f("ck_staff_role_organisation"), "staff", type_="check")
    op.drop_constraint(op.f("ck_staff_role"), "staff", type_="check")
    op.drop_index("ix_staff_organisation", table_name="staff")
    op.drop_constraint(op.f("fk_staff_organisation_organisations"), "staff", type_="foreignkey")
    op.drop_column("staff", "organisation")
    op.drop_column("staff", "role")
    op.drop_index("ix_campaigns_organisation", table_name="campaigns")
    op.drop_constraint(
        op.f("fk_campaigns_organisation_organisations"), "campaigns", type_="foreignkey"
    )
    op.drop_column("campaigns", "organisation")
    op.drop_table("organisations")
