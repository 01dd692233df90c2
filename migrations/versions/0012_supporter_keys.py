"""a keyed hash of the supporter's address on intake's and updates' rows, so an erasure request
can name the person by it instead of their address

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:40:00

Rows written before this revision get their key here, from ``DEARMP_SECRET_KEY`` (the secret the
services use: run ``dearmp db upgrade`` with the same environment as they do).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# (table, its primary key, the column with the address); the address is already normalised in
# signatures and subscribers, not in help requests (``normalise`` below, as of this revision).
TABLES = (
    ("signatures", "id", "email_normalised"),
    ("help_requests", "id", "email"),
    ("subscribers", "id", "email_normalised"),
)
GMAIL = ("gmail.com", "googlemail.com")
PLUS_TAGS = ("outlook.com", "hotmail.com", "live.com", "fastmail.com", "proton.me",
             "protonmail.com", "icloud.com")


def normalise(email: str) -> str:
    local, _, domain = email.strip().lower().rpartition("@")
    if domain in GMAIL:
        local, domain = local.split("+", 1)[0].replace(".", ""), "gmail.com"
    elif domain in PLUS_TAGS:
        local = local.split("+", 1)[0]
    return f"{local}@{domain}"


def upgrade() -> None:
    secret = os.environ.get("DEARMP_SECRET_KEY", "change-me").encode()
    conn = op.get_bind()
    for table, key, email in TABLES:
        op.add_column(table, sa.Column("supporter_key", sa.String(length=64), nullable=True))
        op.create_index(f"ix_{table}_supporter_key", table, ["supporter_key"])
        rows = conn.execute(sa.text(f"SELECT {key}, {email} FROM {table}")).all()
        for row_id, address in rows:
            digest = hmac.new(secret, normalise(address).encode(), hashlib.sha256).hexdigest()
            conn.execute(
                sa.text(f"UPDATE {table} SET supporter_key = :k WHERE {key} = :id"),
                {"k": digest, "id": row_id},
            )


def downgrade() -> None:
    for table, _key, _email in TABLES:
        op.drop_index(f"ix_{table}_supporter_key", table_name=table)
        op.drop_column(table, "supporter_key")
