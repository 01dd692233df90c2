"""What an MP's office receives (issue 26): address headers that parse as one address whatever
the name, the office footer on every letter (and the staff preview shows the same), and the
digest: the campaign's letter once, each constituent's contact and own words, the disclosure
line, a Reply-To that is not our letters@ address."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import date
from email.message import EmailMessage

import pytest

from services.intake.admin.preview import preview_letters
from services.mailer import compose
from services.mailer.scheduled import digest_entry
from shared.campaigns import Campaign, read_campaign_file
from shared.config import Settings
from shared.mail import build_message, smtp_bytes
from shared.messages import Supporter, Target
from tests.support import ROOT

SETTINGS = Settings(mail_domain="dearmp.example", operator_contact="help@dearmp.example")
TITLE = "Children first: guardians, now and always, for every trafficked and unaccompanied child"
DISCLOSURE = "I am sending this through the Children first campaign at https://example.org/cf."
MP = Target(name="Real Member", email="real.member.mp@parliament.uk")


def seed(name: str) -> Campaign:
    return read_campaign_file(ROOT / "campaigns" / f"{name}.yaml")


def supporter(n: int = 0, **kw: str) -> Supporter:
    base = {
        "first_name": f"Jo{n}",
        "last_name": "Bloggs",
        "email": f"jo{n}@example.org",
        "postcode": "GU11 1AA",
        "address_lines": [f"{n} Test Street", "Aldershot"],
        "comment": "",
    }
    return Supporter(**{**base, **kw})  # type: ignore[arg-type]


def wire(msg: EmailMessage, policy: email.policy.Policy | None = None) -> EmailMessage:
    """As a receiving server parses it, written as the mailer writes it (its own bytes, the
    email package's with the message's policy, or the stdlib SMTP policy DKIM signs with)."""
    data = (smtp_bytes(msg) if policy is None else None) or msg.as_bytes(policy=policy)
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def text_of(msg: EmailMessage) -> str:
    return str(msg.get_body(("plain",)).get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]


def html_of(msg: EmailMessage) -> str:
    return str(msg.get_body(("html",)).get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]


def one_address(msg: EmailMessage, field: str) -> tuple[str, str]:
    header = msg[field]
    assert header is not None, field
    assert len(header.addresses) == 1, (field, str(header))
    assert not header.defects, (field, header.defects)
    address = header.addresses[0]
    return " ".join(address.display_name.split()), address.addr_spec


@pytest.mark.parametrize("html", [False, True], ids=["text", "multipart"])
@pytest.mark.parametrize("policy", [None, email.policy.SMTP], ids=["ours", "smtp-policy"])
@pytest.mark.parametrize(
    "name",
    [
        TITLE + " via Dear MP",
        "Siân Ó Briain, Chair: Friends of the Children of Aldershot and District via Dear MP",
        "Short: a, b via Dear MP",
    ],
)
def test_a_display_name_with_a_colon_and_a_comma_is_one_address_on_the_wire(
    name: str, policy: email.policy.Policy | None, html: bool
) -> None:
    """The email package drops the quotes of a long name when it folds it: From parsed as a
    group of several addresses."""
    msg = build_message(
        from_name=name,
        from_addr="letters@dearmp.example",
        to_name=name,
        to_addr="real.member.mp@parliament.uk",
        reply_to=(name, "jo@example.org"),
        subject="s",
        text="t",
        html="<p>t</p>" if html else None,
        message_id="<m@dearmp.example>",
    )
    parsed = wire(msg, policy)
    assert one_address(parsed, "From") == (name, "letters@dearmp.example")
    assert one_address(parsed, "To") == (name, "real.member.mp@parliament.uk")
    assert one_address(parsed, "Reply-To") == (name, "jo@example.org")


def test_a_letter_ends_with_the_office_footer_in_both_parts() -> None:
    campaign = seed("home-secretary-support")
    s = supporter(comment="Please act.")
    parsed = wire(compose.letter(uuid.uuid4(), campaign, s, MP, SETTINGS))
    text = text_of(parsed)
    footer = text[text.index("-- \n") :]
    assert "Sent by Dear MP on behalf of Jo0 Bloggs" in footer
    assert f"the campaign “{campaign.title}”" in footer
    assert "To reply to Jo0 Bloggs, write to jo0@example.org" in footer
    assert "help@dearmp.example" in footer
    assert text.index("Please act.") < text.index("-- \n")  # under the letter
    # Reply-To is still the constituent; From never their address.
    assert one_address(parsed, "Reply-To")[1] == "jo0@example.org"
    assert one_address(parsed, "From")[1] == "letters@dearmp.example"


def test_an_html_letter_has_the_footer_in_its_html_part_too() -> None:
    campaign = Campaign.model_validate(
        {
            "slug": "camp",
            "title": TITLE,
            "target": {"kind": "mp"},
            "letter": {
                "subject": "s",
                "body": "Dear {{ target.name }},\n{{ supporter.full_name }}\n",
                "html": "<p>Dear {{ target.name }},</p><p>{{ supporter.full_name }}</p>",
            },
        }
    )
    parsed = wire(compose.letter(uuid.uuid4(), campaign, supporter(), MP, SETTINGS))
    html = html_of(parsed)
    assert '<a href="mailto:jo0@example.org">jo0@example.org</a>' in html
    assert '<a href="mailto:help@dearmp.example">' in html
    assert "Sent by Dear MP on behalf of Jo0 Bloggs" in html


def test_the_staff_preview_shows_the_email_that_goes_footer_and_all() -> None:
    campaign = seed("home-secretary-support")  # a fixed target: no MP look-up needed
    preview = preview_letters(None, campaign, "GU11 1AA", "dearmp.example")  # type: ignore[arg-type]
    [sent] = preview.emails
    sample = Supporter(
        first_name="Sam",
        last_name="Sample",
        email="sam.sample@example.org",
        postcode="GU11 1AA",
        address_lines=["1 Sample Street", "Sampletown"],
    )
    to = compose.fixed_target(campaign)
    mailed = compose.letter(
        uuid.uuid4(), campaign, sample, to, Settings(mail_domain="dearmp.example")
    )
    assert text_of(sent.message) == text_of(mailed)
    assert "To reply to Sam Sample, write to sam.sample@example.org" in text_of(sent.message)
    for field in ("From", "To", "Reply-To", "Subject"):
        assert sent.header(field) == str(mailed[field])


def digest_of(campaign: Campaign, supporters: list[Supporter], **kw: object) -> EmailMessage:
    entries = []
    for s in supporters:
        words = s.letter if campaign.letter.editable and s.letter else ""
        entries.append(digest_entry(s, words or s.comment, MP.name))
    msg = compose.digest(
        uuid.uuid4(), campaign, MP.email or "", date(2027, 1, 31), entries, SETTINGS, **kw
    )  # type: ignore[arg-type]
    return wire(msg)


def test_a_digest_holds_the_letter_each_contact_and_the_disclosure_in_both_parts() -> None:
    campaign = seed("guardians-for-children").model_copy(
        update={"title": TITLE, "delivery": "digest", "disclosure": DISCLOSURE}
    )
    people = [supporter(1, comment="Words of my own."), supporter(2), supporter(3)]
    msg = digest_of(campaign, people)
    assert one_address(msg, "From") == (f"{TITLE} via Dear MP", "letters@dearmp.example")
    # Reply goes to the operator, never to our letters@ address (nobody reads it).
    assert one_address(msg, "Reply-To")[1] == "help@dearmp.example"
    text, html = text_of(msg), html_of(msg)
    letter_words = "An independent guardian, with"
    for part in (text, html):
        assert part.count(letter_words) == 1, "the campaign's letter once"
        assert "Dear Real Member," in part
        assert DISCLOSURE in part
        assert "Words of my own." in part
        assert "single" in part or "each letter on its own" in part
        for s in people:
            assert s.full_name in part and s.email in part
            assert f"{s.address_lines[0]}" in part
    for s in people:
        assert f"mailto:{s.email}" in text
        assert f'href="mailto:{s.email}"' in html
    assert " class=" not in html  # Outlook: inline styles only
    assert text.index(letter_words) < text.index("1. Jo1 Bloggs") < text.index("3. Jo3 Bloggs")


def test_a_digest_of_an_editable_letter_says_who_rewrote_it_and_gives_their_words() -> None:
    campaign = seed("home-secretary-support").model_copy(update={"delivery": "digest"})
    assert campaign.letter.editable
    rewritten = "My own version of the message, in my words."
    people = [
        supporter(1, letter=rewritten, comment="And a comment."),
        supporter(2, comment="Only a comment."),
    ]
    msg = digest_of(campaign, people)
    text, html = text_of(msg), html_of(msg)
    for part in (text, html):
        assert "1 of them rewrote the letter's words" in part and "(Jo1 Bloggs)" in part
        assert rewritten in part and "And a comment." in part and "Only a comment." in part
    row1 = text[text.index("1. Jo1 Bloggs") : text.index("2. Jo2 Bloggs")]
    assert "They rewrote the letter's words" in row1 and rewritten in row1
    row2 = text[text.index("2. Jo2 Bloggs") :]
    assert "They rewrote" not in row2


def test_a_digest_names_the_organisation_that_runs_the_campaign() -> None:
    campaign = seed("guardians-for-children").model_copy(update={"delivery": "digest"})
    msg = digest_of(campaign, [supporter(1)], organisation="Children First UK")
    for part in (text_of(msg), html_of(msg)):
        assert "run by Children First UK" in part
