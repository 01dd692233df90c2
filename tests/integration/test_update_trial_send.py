"""Issue 26: "send a test to me" on the staff update composer is built by the updates service's
own builder (``services.updates.compose.trial_copy`` → ``UpdateMail.build``), so the test is the
email subscribers will get: the organisation's From (one address however the campaign is
titled), and Markdown written out as plain text in the text part, as in the real copies."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa

from services.updates.compose import Recipient, UpdateContent, UpdateMail
from shared.campaigns import get_campaign, save_campaign
from tests.integration.admin_helpers import CAMPAIGN, STAFF_EMAIL
from tests.integration.test_admin import publish_form, signed_in

TITLE = "Children first: guardians, now and always, for every trafficked and unaccompanied child"
SENDER = "Children First: the charity for trafficked and unaccompanied children via Dear MP"
BODY = "We **won** a debate.\n\nRead [the record](https://example.org/hansard) and *thank* your MP."


def text_of(message) -> str:  # type: ignore[no-untyped-def]
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return re.sub(r"https?://\S+/unsubscribe/\S+", "<unsubscribe>", text)


def test_the_test_update_is_the_email_subscribers_get(settings, engine, mail) -> None:
    with engine.begin() as conn:
        campaign = get_campaign(conn, CAMPAIGN)
        assert campaign is not None
        save_campaign(conn, campaign.model_copy(update={"title": TITLE}))
        named = conn.execute(
            sa.text(
                "UPDATE organisations o SET sender_name = :n FROM campaigns c "
                "WHERE c.organisation = o.slug AND c.slug = :c"
            ),
            {"n": SENDER, "c": CAMPAIGN},
        )
        assert named.rowcount == 1
    client = signed_in(settings, engine)
    page = client.post(
        f"/admin/c/{CAMPAIGN}/updates",
        data=publish_form(client, "test", title="Trial run", body=BODY),
    )
    assert page.status_code == 200 and "A test was sent to the sandbox" in page.text
    [caught] = mail.handler.wait_for(1, timeout=30)  # type: ignore[attr-defined]
    message = caught.message
    assert message["X-DearMP-Intended-Recipient"] == STAFF_EMAIL
    assert message["Subject"] == "[Test] Update #1: Trial run"

    # From: the organisation's sender name, as on the real copies: one address.
    [sender] = message["From"].addresses
    assert not message["From"].defects
    assert " ".join(sender.display_name.split()) == SENDER
    assert sender.addr_spec == f"updates@{settings.mail_domain}"

    # The text part: Markdown written out, and the same as a subscriber's copy.
    text = text_of(message)
    assert "**" not in text and "](" not in text and "*thank*" not in text
    assert "We won a debate." in text and "the record (https://example.org/hansard)" in text
    real = UpdateMail(UpdateContent(CAMPAIGN, TITLE, 1, "Trial run", BODY, SENDER), settings)
    copy = real.build(Recipient(1, uuid.uuid4(), "someone@example.org", "[first name]"))
    assert text == text_of(copy)
    [real_sender] = copy["From"].addresses
    assert (real_sender.display_name, real_sender.addr_spec) == (SENDER, sender.addr_spec)
    html = message.get_body(("html",)).get_content()
    assert "<strong>won</strong>" in html and 'href="https://example.org/hansard"' in html
