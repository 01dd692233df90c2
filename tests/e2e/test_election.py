"""Issue 19, Must-show 5: a dissolution and a general election on the demo data. From the
dissolution, letters to MPs wait (held, the supporter told why); the MP and boundary data
imported after the election release them, each re-resolved: to the new member, and for a
postcode the new boundaries moved, to the member for its new constituency."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.support import (
    ROOT,
    confirm_email,
    letters_by_purpose,
    make_signature,
    post_signatures,
    wait_for_purpose,
    wait_until,
)

DEMO = ROOT / "data" / "demo"
# After the election: Aldershot elects a new member; Sevenoaks and Demo Westminster re-elect
# theirs; the new boundaries move GU12 4BB from Aldershot to Demo Westminster.
ALDERSHOT_BEFORE = "Aldershot,E14001063,90001,Alex Demo MP,Alex Demo,Demo Party,alex.demo.mp@"
ALDERSHOT_AFTER = "Aldershot,E14001063,90101,Ada New MP,Ada New,Demo Party,ada.new.mp@"
EXPECTED = {  # postcode → the member its letter must reach
    "GU11 1AA": "ada.new.mp@demo-parliament.invalid",
    "BR8 7RE": "sam.sample.mp@demo-parliament.invalid",
    "GU12 4BB": "jo.westminster.mp@demo-parliament.invalid",
}


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def dearmp(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.ops.cli", *args],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_letters_wait_through_a_dissolution_and_go_to_the_new_members(
    system, mail, engine, tmp_path: Path
) -> None:
    dissolved = datetime.now(UTC).isoformat()  # the demo MP data is older: nobody sits
    for service in system.services.values():
        service.env.update({"DEARMP_DISSOLUTION_AT": dissolved, "DEARMP_HELD_SWEEP_SECONDS": "0.5"})
    system.start()
    signatures = {postcode: make_signature(postcode=postcode) for postcode in EXPECTED}
    post_signatures(system.base_url, "guardians-for-children", list(signatures.values()))
    with httpx.Client(timeout=30) as client:
        for caught in mail.handler.wait_for(3, timeout=60):
            confirm_email(caught.message, client)

    # Held, all three, and each supporter told why, once; nothing goes to any MP meanwhile.
    notices = wait_for_purpose(mail, "held", 3)
    assert len(notices) == 3
    assert count(engine, "SELECT count(*) FROM held_signatures WHERE reason = 'dissolved'") == 3
    held_text = [
        c.message.get_body(("plain",)).get_content()
        for c in mail.messages
        if str(c.message["Message-ID"]).startswith("<held.")
    ]
    assert all("Parliament has been dissolved" in text for text in held_text)
    wait_until(
        lambda: count(engine, "SELECT count(*) FROM signatures WHERE status = 'held'") == 3,
        20,
        message="intake to show the signatures as held",
    )
    assert "letter" not in letters_by_purpose(mail.messages)

    # The election: the new boundaries and the new Parliament's MP data.
    onspd = (
        (DEMO / "onspd.csv")
        .read_text()
        .replace(
            '"GU12 4BB","198001","","E10000014","E14001063"',
            '"GU12 4BB","198001","","E10000014","E14009903"',
        )
    )
    assert "E14009903" in onspd.split("GU12 4BB", 1)[1].splitlines()[0]
    (tmp_path / "onspd.csv").write_text(onspd)
    mps = (DEMO / "mps.csv").read_text()
    assert ALDERSHOT_BEFORE in mps
    (tmp_path / "mps.csv").write_text(mps.replace(ALDERSHOT_BEFORE, ALDERSHOT_AFTER))
    env = system.services["resolver"].env
    dearmp(env, "data", "import-onspd", str(tmp_path / "onspd.csv"), "--quiet")
    dearmp(env, "data", "import-mps", str(tmp_path / "mps.csv"), "--quiet")

    wait_for_purpose(mail, "letter", 3)
    wait_for_purpose(mail, "copy", 3)
    reached = {
        c.message["X-DearMP-Intended-Recipient"]
        for c in mail.messages
        if str(c.message["Message-ID"]).startswith("<letter.")
    }
    assert reached == set(EXPECTED.values())
    assert len(letters_by_purpose(mail.messages)["letter"]) == 3  # once each
    assert len(letters_by_purpose(mail.messages)["held"]) == 3  # told once, not again
    assert count(engine, "SELECT count(*) FROM held_signatures") == 0
