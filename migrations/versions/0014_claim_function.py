"""one statement for a consumer's inbox claim and its erasure check (``dearmp_claim``)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 12:10:00

Every in-transaction handler used to run three statements before its work: the inbox claim, the
advisory lock that waits for an erasure of the supporter in progress, and the read of the erased
list. The function does the same in one round trip. It is VOLATILE, so each statement in it takes
its own snapshot: the read after the lock sees an erasure that committed while it waited, as the
separate statements did (``shared.erased``).
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# It reads the erased list it is named (each service's ``shared.erased.erased_supporters_table``;
# a test checks every one is here), by static statements that PL/pgSQL plans once.
CLAIM = """
CREATE OR REPLACE FUNCTION dearmp_claim(
    p_consumer text, p_event_id uuid, p_erased text, p_key text, p_signed_at timestamptz
) RETURNS text VOLATILE LANGUAGE plpgsql AS $$
DECLARE
    v_erased_at timestamptz;
BEGIN
    INSERT INTO inbox (consumer, event_id, processed_at)
    VALUES (p_consumer, p_event_id, clock_timestamp())
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    IF p_key IS NULL THEN
        RETURN 'claimed';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('erased:' || p_key));
    IF p_erased = 'erased_supporters' THEN
        SELECT erased_at INTO v_erased_at FROM erased_supporters WHERE supporter_key = p_key;
    ELSIF p_erased = 'resolver_erased_supporters' THEN
        SELECT erased_at INTO v_erased_at FROM resolver_erased_supporters
        WHERE supporter_key = p_key;
    ELSIF p_erased = 'updates_erased_supporters' THEN
        SELECT erased_at INTO v_erased_at FROM updates_erased_supporters
        WHERE supporter_key = p_key;
    ELSE
        RAISE EXCEPTION 'dearmp_claim: no erased list called %', p_erased;
    END IF;
    IF v_erased_at IS NOT NULL AND (p_signed_at IS NULL OR p_signed_at <= v_erased_at) THEN
        RETURN 'erased';
    END IF;
    RETURN 'claimed';
END
$$
"""


def upgrade() -> None:
    op.execute(CLAIM)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS dearmp_claim(text, uuid, text, text, timestamptz)")
