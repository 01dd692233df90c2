"""Property-based fuzzing of the JSON API from its own OpenAPI document (schemathesis 4).

The intake app runs in-process (ASGI) against a real, migrated Postgres database with the demo
data. For every operation in /openapi.json schemathesis generates schema-valid and schema-invalid
requests; every answer must be below 500 and match the documented status codes, content types and
response schemas, and schema-invalid input must be refused with a 4xx. Rate limits are raised so
the run exercises validation rather than the limiter.

Generated slugs almost never name a real campaign, so most requests would stop at the 404; each
operation is therefore also fuzzed with its slug pinned to an open MP campaign, an open
non-MP campaign and a closed one, so the bodies reach validation and the database.

Each (operation, slug, mode) is a separate Hypothesis run through the public
``APIOperation.as_strategy`` API (schemathesis' lazy ``from_fixture`` pytest integration fails
under pytest 9: "'Function' object has no attribute '_nodeid'"), and every failure is collected so
one run reports them all. DEARMP_FUZZ_EXAMPLES raises the examples per run for a deeper search.
"""

from __future__ import annotations

import os
import time
from typing import Any

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from services.intake.app import create_app
from shared.campaigns import get_campaign, save_campaign
from tests.support import make_signature

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("DEARMP_FUZZ_EXAMPLES", "50"))  # per operation, slug and mode
TIME_BUDGET_S = 120
OPEN_MP_CAMPAIGN = "guardians-for-children"
OPEN_OTHER_CAMPAIGN = "specialist-support-for-child-victims"
CLOSED_CAMPAIGN = "fuzz-closed-campaign"
SLUGS: list[str | None] = [None, OPEN_MP_CAMPAIGN, OPEN_OTHER_CAMPAIGN, CLOSED_CAMPAIGN]
# Every operation the API publishes; a new one must be added here (and so is fuzzed on purpose).
EXPECTED = {
    "GET /api/v1/campaigns/{slug}",
    "GET /api/v1/campaigns/{slug}/counts",
    "POST /api/v1/campaigns/{slug}/signatures",
    "POST /api/v1/campaigns/{slug}/help-requests",
}

# FastAPI answers 400 "There was an error parsing the body" when a body is not UTF-8 JSON at all,
# and the schema does not list 400. Tolerated (it is a 4xx with a message) until the API documents
# it or maps it to 422; any other undocumented status still fails.
UNPARSEABLE_BODY = "There was an error parsing the body"


def documented_status_code(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code == 400 and _detail(response) == UNPARSEABLE_BODY:
        return None
    return status_code_conformance(ctx, response, case)  # type: ignore[no-any-return]


def _detail(response: Any) -> object:
    try:
        return response.json().get("detail")
    except Exception:
        return None


CHECKS = [
    not_a_server_error,
    documented_status_code,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def api_schema(settings, engine):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        template = get_campaign(conn, OPEN_MP_CAMPAIGN)
        assert template is not None and get_campaign(conn, OPEN_OTHER_CAMPAIGN) is not None
        save_campaign(conn, template.model_copy(update={"slug": CLOSED_CAMPAIGN, "open": False}))
    generous = settings.model_copy(
        update={"rate_limit_ip": "100000/60", "rate_limit_email": "100000/60"}
    )
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(generous, engine))


def test_api_never_answers_5xx_and_matches_its_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.label for op in operations} == EXPECTED
    failures: list[str] = []
    runs = 0
    started = time.monotonic()
    for operation in operations:
        for slug in SLUGS:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fixed = {"path_parameters": {"slug": slug}} if slug else {}
                strategy = operation.as_strategy(generation_mode=mode, **fixed)

                @hypothesis.settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    print_blob=False,
                )
                @hypothesis.given(case=strategy)
                def run(case: schemathesis.Case) -> None:
                    case.call_and_validate(checks=CHECKS)

                runs += 1
                where = f"{operation.label} slug={slug or '<generated>'} ({mode.value})"
                try:
                    run()
                except Unsatisfiable:
                    # Nothing invalid to generate: e.g. a GET whose only parameter is pinned, or
                    # a free-form string slug (any string is a valid slug).
                    assert mode is GenerationMode.NEGATIVE, where
                except (Exception, BaseExceptionGroup) as exc:  # report every run's failure
                    failures.append(f"{where}:\n{exc}")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {runs} fuzz runs failed:\n\n" + "\n\n".join(failures)
    assert elapsed < TIME_BUDGET_S, f"the fuzz run took {elapsed:.0f}s; keep it bounded"


# Anything JSON can carry in one field, mostly text: Hypothesis' text strategy readily produces NUL
# and other control characters, astral characters, whitespace and long strings.
ANY_VALUE = st.one_of(
    st.text(max_size=400),
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "=1+1", "a\r\nBcc: x@example.org", "GU11 1AA\x00"]),
    st.none(),
    st.booleans(),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=2),
)
# '#', '?' and '/' would change the URL itself (the test client does not escape them in a path
# parameter), turning "POST …/{slug}/signatures" into a request for another route.
SLUG = st.text(min_size=1, max_size=40).filter(lambda s: not set(s) & set("#?/"))


def _near_valid_cases(operation: Any, field: str) -> st.SearchStrategy[Any]:
    """A valid request for ``operation`` with only ``field`` (a body field or "slug") fuzzed."""
    if operation.method.upper() == "POST":
        if operation.path.endswith("/signatures"):
            valid: dict[str, Any] = {**make_signature(), "email": "fuzz@example.org"}
        else:
            valid = {"name": "Jo Bloggs", "email": "fuzz@example.org", "message": "I cannot sign"}
    else:
        valid = {}

    def build(value: Any) -> Any:
        slug = value if field == "slug" else OPEN_MP_CAMPAIGN
        body = {**valid, field: value} if field != "slug" else valid
        if operation.method.upper() == "GET":
            return operation.Case(path_parameters={"slug": slug})
        return operation.Case(
            path_parameters={"slug": slug}, body=body, media_type="application/json"
        )

    return (SLUG if field == "slug" else ANY_VALUE).map(build)


def test_near_valid_requests_never_answer_5xx(api_schema, engine) -> None:  # type: ignore[no-untyped-def]
    """Fully random bodies stop at validation; here one field at a time is fuzzed in an otherwise
    valid request, so the odd value reaches the checks, the database and the outbox."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    failures: list[str] = []
    runs = 0
    for operation in operations:
        fields = ["slug"]
        if operation.path.endswith("/signatures"):
            fields += [
                "first_name",
                "last_name",
                "email",
                "address_line1",
                "address_line2",
                "town",
                "postcode",
                "comment",
                "opt_in",
                "consent",
            ]
        elif operation.path.endswith("/help-requests"):
            fields += ["name", "email", "message"]
        for field in fields:

            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
            @hypothesis.given(case=_near_valid_cases(operation, field))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS)

            runs += 1
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # report every run's failure
                failures.append(f"{operation.label}, fuzzing {field}:\n{exc}")
    assert not failures, f"{len(failures)} of {runs} fuzz runs failed:\n\n" + "\n\n".join(failures)
    with engine.connect() as conn:  # the valid examples really reached the database
        assert conn.execute(sa.text("SELECT count(*) FROM signatures")).scalar_one() > 0
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() > 0
