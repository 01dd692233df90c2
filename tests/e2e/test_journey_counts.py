"""One campaign, one real journey, and every place that counts it agreeing.

Three supporters sign through the API; two confirm from their emails, and the mail server takes
the letter to one MP and refuses the other's for good; the third never confirms and is erased.
The staff dashboard and campaign page, ``dearmp status --json`` and the public ``/c/{slug}.json``
then say the same: 2 confirmed, 1 letter sent, 1 failed (the erased signature counts nowhere).
Nothing is written by hand: the handlers write every status the readers read.
"""

from __future__ import annotations

import html
import re

import httpx

from tests.integration.admin_helpers import login, make_staff
from tests.integration.mailer_helpers import dearmp, dearmp_json
from tests.support import confirm_email, make_signature, post_signatures, wait_until

CAMPAIGN = "guardians-for-children"
REFUSED_MP = "sam.sample.mp@demo-parliament.invalid"  # Sevenoaks, BR8 7RE (data/demo)


def dashboard_row(page: str, slug: str) -> dict[str, int]:
    """The /admin table's row for one campaign, as {column heading: number}."""
    table = page[page.index("<table") : page.index("</table>")]
    headings = [
        html.unescape(h).strip() for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', table)
    ]
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        if f"/admin/c/{slug}" not in row:
            continue
        cells = re.findall(r'<td class="num">(?:<strong>)?([\d,]+)', row)
        return {h: int(c.replace(",", "")) for h, c in zip(headings[1:], cells, strict=True)}
    raise AssertionError(f"no row for {slug} on the dashboard")


def test_dashboard_status_and_public_counts_agree_after_a_real_journey(
    system, mail, engine
) -> None:
    mail.handler.refuse_meant_for = {REFUSED_MP}
    system.start()
    sent_to_mp = make_signature(postcode="GU11 1AA")
    refused = make_signature(postcode="BR8 7RE", town="Swanley")
    never_confirmed = make_signature(postcode="GU12 4BB")
    post_signatures(system.base_url, CAMPAIGN, [sent_to_mp, refused, never_confirmed])
    for caught in mail.handler.wait_for(3, timeout=60)[:3]:
        if caught.message["X-DearMP-Intended-Recipient"] != never_confirmed["email"]:
            assert confirm_email(caught.message).status_code == 200
    erased = dearmp(system.env, "supporters", "erase", never_confirmed["email"], "--wait")
    assert erased.returncode == 0, erased.stderr + erased.stdout

    def final() -> bool:
        status = dearmp_json(system.env, "status", "--json")
        counts = status["campaigns"].get(CAMPAIGN, {})
        return counts.get("sent") == 1 and counts.get("failed") == 1

    wait_until(final, 90, message="one letter sent and one refused")

    status = dearmp_json(system.env, "status", "--json")["campaigns"][CAMPAIGN]
    assert (status["confirmed"], status["sent"], status["failed"]) == (2, 1, 1)
    assert status["pending"] == 0 and status["by_status"]["erased"] == 1

    public = httpx.get(f"{system.base_url}/c/{CAMPAIGN}.json", timeout=10).json()
    assert public["total"] == 2

    make_staff(engine)
    with httpx.Client(base_url=system.base_url, timeout=30) as staff:
        assert login(staff).status_code == 303
        row = dashboard_row(staff.get("/admin").text, CAMPAIGN)
        campaign_page = staff.get(f"/admin/c/{CAMPAIGN}").text
    assert row["Confirmed"] == 2
    assert row["Letter sent"] == 1 and row["Letter failed"] == 1
    assert row["Waiting to confirm"] == 0 and row["Erased before confirming"] == 1
    assert '<p class="dearmp-count"><strong>2</strong> confirmed' in campaign_page
