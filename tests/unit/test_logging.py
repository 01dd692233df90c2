"""Supporters' personal data never reaches a log line: checked on real rendered output."""

from __future__ import annotations

import json
import subprocess
import sys

from shared.logging import redact_pii
from tests.support import ROOT

SCRIPT = r"""
import logging
from shared.logging import configure_logging, get_logger, bind_context
from shared.messages import Supporter
configure_logging("test", json=True)
log = get_logger("t")
s = Supporter(first_name="Siân", last_name="Zoë-Whitfield", email="sian.zoe@example.org",
              postcode="GU11 1AA", address_lines=["12 Acacia Avenue"], comment="my story")
bind_context(event_id="e-1", correlation_id="c-1")
log.info("signature received", supporter=s.model_dump(), email=s.email, campaign="guardians")
log.info("nested", payload={"supporter": {"email": "x@example.org"}, "first_name": "Siân"})
log.warning("free text mentions sian.zoe@example.org in passing, and jö.zoë@bücher.example")
logging.getLogger("uvicorn.error").warning("library says %s", "sian.zoe@example.org")
try:
    raise ValueError("refused row: Siân Zoë-Whitfield, 12 Acacia Avenue")
except ValueError:
    log.exception("ours failed")
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
"""


def test_rendered_json_logs_contain_no_personal_data() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    output = result.stderr
    lines = [json.loads(line) for line in output.strip().splitlines()]
    assert len(lines) == 6
    # Exceptions, ours or a library's, keep their frames and class, never their message.
    for logged in lines[4:]:
        assert "ValueError" in logged["exception"] and "<string>" in logged["exception"]
    needles = (
        "sian.zoe@example.org",
        "x@example.org",
        "Siân",
        "Zoë",
        "Acacia",
        "my story",
        "bücher",
    )
    for needle in needles:
        # As typed, and as the JSON log writes it ("Si\u00e2n" for "Siân").
        for form in {needle, json.dumps(needle)[1:-1]}:
            assert form not in output, f"{form!r} leaked into the logs"
    first = lines[0]
    assert first["service"] == "test" and first["event_id"] == "e-1"
    assert first["correlation_id"] == "c-1" and first["campaign"] == "guardians"
    assert first["supporter"] == "[redacted]" and first["email"] == "[redacted]"
    assert "[email]" in lines[2]["event"]


def test_the_needles_are_written_as_json_writes_them() -> None:
    """The check above would be vacuous for non-ASCII names if it looked for them only as typed:
    the JSON log escapes them."""
    assert json.dumps("Siân")[1:-1] == "Si\\u00e2n"


def test_redaction_masks_by_key_at_any_depth() -> None:
    out = redact_pii(None, "info", {"event": "x", "data": [{"last_name": "Ó Briain", "ok": 1}]})
    assert out["data"] == [{"last_name": "[redacted]", "ok": 1}]


def test_a_database_error_quoting_the_row_is_redacted() -> None:
    """A CHECK or unique violation quotes the row (names, postcode, address) in its DETAIL, and
    SQLAlchemy adds the statement's parameters: neither reaches a log line or a dead letter."""
    error = (
        'IntegrityError: (psycopg.errors.CheckViolation) new row for relation "signatures" '
        'violates check constraint "ck_signatures_status"\n'
        "DETAIL:  Failing row contains (4926e5bb, guardians, Siân, Zoë-Whitfield, GU11 1AA, "
        '["12 Acacia Avenue"], supporter-cfc67f0a69@example.o).\n'
        "[SQL: UPDATE signatures SET status=%(status)s::VARCHAR WHERE signatures.id = %(id_1)s]\n"
        "[parameters: {'status': 'letter_sent', 'first_name': 'Siân'}]\n"
        "(Background on this error at: https://sqlalche.me/e/21/gkpj)"
    )
    out = redact_pii(None, "error", {"event": "message dead-lettered", "reason": error})["reason"]
    for needle in ("Siân", "Zoë", "Acacia", "GU11", "supporter-cfc67f0a69"):
        assert needle not in out, needle
    assert 'violates check constraint "ck_signatures_status"' in out
    assert "DETAIL: [redacted]" in out and "[parameters: [redacted]]" in out


def test_a_database_error_is_described_by_its_class_and_sqlstate_only() -> None:
    """A trigger's or a cast's message quotes values the redactor cannot recognise as personal
    ("invalid input syntax for type uuid: "Siân""): workers log such errors without it."""
    import psycopg
    import sqlalchemy.exc

    from shared.logging import error_detail

    class Raised(psycopg.errors.RaiseException):
        sqlstate = "P0001"

    wrapped = sqlalchemy.exc.DBAPIError("INSERT …", {"first_name": "Siân"}, Raised("row: Siân"))
    assert error_detail(wrapped) == "Raised (SQLSTATE P0001)"
    assert error_detail(ValueError("write to jo@example.org")) == "write to [email]"
