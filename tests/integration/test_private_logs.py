"""Must-show: the database fails while signing, with the supporter's name, email and address in
the statement (a trigger that quotes them in its error, as a CHECK or unique violation would),
and intake's JSON log holds none of them, in any spelling the log could use: the error's class,
where it happened and the request id, never the values."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from tests.support import make_signature

SLUG = "guardians-for-children"
FAIL_LOUDLY = """
CREATE FUNCTION dearmp_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused row: %% %% <%%> %% %%',
        NEW.first_name, NEW.last_name, NEW.email, NEW.address_lines, NEW.postcode;
END $$;
CREATE TRIGGER dearmp_test_fail BEFORE INSERT ON signatures
    FOR EACH ROW EXECUTE FUNCTION dearmp_test_fail();
"""


def test_a_database_failure_while_signing_logs_no_personal_data(system, engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(FAIL_LOUDLY)
    system.start("intake")
    signature = make_signature(
        first_name="Siân", last_name="Zoë-Whitfield", address_line1="12 Acacia Avenue"
    )
    response = httpx.post(
        f"{system.base_url}/api/v1/campaigns/{SLUG}/signatures", json=signature, timeout=10
    )
    assert response.status_code == 500
    assert response.json() == {"detail": "Something went wrong on our side; nothing was saved."}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM signatures")).scalar_one() == 0
    system.services["intake"].terminate()  # everything it had to say is written
    log = system.services["intake"].output()
    errors = [json.loads(line) for line in log.splitlines() if '"unhandled error"' in line]
    assert len(errors) == 1, log[-3000:]
    assert errors[0]["error"] == "RaiseException" and errors[0]["request_id"]
    assert any("signing.py" in frame for frame in errors[0]["where"])
    for needle in ("Siân", "Zoë", "Whitfield", "Acacia", signature["email"], "GU11 1AA"):
        for form in {needle, json.dumps(needle)[1:-1]}:
            assert form not in log, f"{form!r} is in intake's log"
