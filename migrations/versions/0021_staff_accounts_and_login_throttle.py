"""staff accounts: an address may have an account in several organisations (issue 25)

An owner adding an address that another organisation already has got a different answer from
one for a new address, which told them the address had an account elsewhere. Now the address is
unique per organisation (and once among platform operators), so the owner's answer is the same
whatever the address. Wrong passwords are throttled in ``rate_limits`` (no schema change).

The downgrade refuses while an address has more than one account: which to keep is a decision
for an operator (``dearmp staff remove EMAIL --org SLUG``), not for a migration.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f("uq_staff_email"), "staff", type_="unique")
    op.create_index(
        "uq_staff_email_organisation",
        "staff",
        ["email", "organisation"],
        unique=True,
        postgresql_where=sa.text("organisation IS NOT NULL"),
    )
    op.create_index(
        "uq_staff_email_operator",
        "staff",
        ["email"],
        unique=True,
        postgresql_where=sa.text("organisation IS NULL"),
    )


def downgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT count(*) FROM (SELECT email FROM staff GROUP BY email HAVING count(*) > 1) s"
            )
        )
        .scalar_one()
    )
    if shared:
        raise RuntimeError(
            f"{shared} address(es) have more than one staff account; remove the extra ones "
            "(dearmp staff remove EMAIL --org SLUG) before going below migration 0021"
        )
    op.drop_index("uq_staff_email_operator", table_name="staff")
    op.drop_index("uq_staff_email_organisation", table_name="staff")
    op.create_unique_constraint(op.f("uq_staff_email"), "staff", ["email"])
