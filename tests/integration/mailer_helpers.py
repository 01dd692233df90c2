"""Helpers for the mailer's tests: letters to send without going through intake and resolver.

``stage_letters`` writes ``signature.resolved`` events straight into the outbox, as the resolver
would; with the relay and the mailer running they become letters (and copies) at the catcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import sqlalchemy as sa

from shared import outbox
from shared.messages import Constituency, SignatureResolved, Supporter, Target
from tests.support import ROOT

CAMPAIGN = "guardians-for-children"
MP = Target(name="Real Member", email="real.member.mp@parliament.uk", party="Independent")


def resolved_event(
    *,
    first_name: str = "Jo",
    last_name: str = "Bloggs",
    email: str | None = None,
    comment: str = "Please act.",
    target: Target = MP,
    campaign: str = CAMPAIGN,
) -> SignatureResolved:
    return SignatureResolved(
        signature_id=uuid.uuid4(),
        campaign=campaign,
        supporter=Supporter(
            first_name=first_name,
            last_name=last_name,
            email=email or f"supporter-{uuid.uuid4().hex[:10]}@example.org",
            postcode="GU11 1AA",
            address_lines=["1 Test Street", "Aldershot"],
            comment=comment,
        ),
        constituency=Constituency(code="E14001063", name="Aldershot"),
        target=target,
    )


def stage_letters(engine: sa.Engine, events: list[SignatureResolved]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            outbox.add_many(conn, [(e, str(e.signature_id)) for e in chunk])


def count(engine: sa.Engine, sql: str, **params: Any) -> int:
    """A count; rides out a Postgres restart (other fault tests may restart the shared server)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text(sql), params).scalar_one() or 0)
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def message_ids(caught: list[Any]) -> Counter[str]:
    return Counter(str(c.message["Message-ID"]).strip("<>") for c in caught)


def dearmp(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the ``dearmp`` command line as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "services.ops.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dearmp_json(env: dict[str, str], *args: str) -> Any:
    result = dearmp(env, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
