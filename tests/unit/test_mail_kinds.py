"""Every kind of email the mailer sends, built and parsed back with Python's ``email`` package.

Confirmation, reminder, letter, the supporter's copy and the unresolvable notice: headers and
encodings survive a round trip (names such as Siân, Zoë, Ó Briain, 王), the HTML part escapes
what supporters typed while the text part keeps it as typed, and a corpus of header-injection
attempts in every supporter field adds no header and no recipient to any of them. The emails to
an address nobody has confirmed (confirmation, reminder, "already signed") name nobody at all
(issue 25; tests/unit/test_unconfirmed_mail.py).
"""

from __future__ import annotations

import copy
import email
import email.policy
import io
import re
import uuid
from collections.abc import Callable
from email.generator import BytesGenerator
from email.message import EmailMessage

import pytest

from services.mailer import compose
from shared.campaigns import Campaign
from shared.config import Settings
from shared.mail import smtp_bytes
from shared.messages import Supporter, Target

SETTINGS = Settings(
    mail_domain="dearmp.example",
    sandbox_to="sandbox@example.org",
    base_url="https://dearmp.test",
    secret_key="unit-test-secret-0123456789",
)
MP = Target(name="Real Member", email="real.member.mp@parliament.uk")
TEXT_BODY = (
    "Dear {{ target.name }},\n{{ supporter.comment }}\n"
    "{{ supporter.full_name }}\n{{ supporter.address }}\n"
)
HTML_BODY = (
    "<p>Dear {{ target.name }},</p>\n<p>{{ supporter.comment }}</p>\n"
    "<p>{{ supporter.full_name }}<br>{{ supporter.address }}</p>\n"
)


def campaign(*, html: bool) -> Campaign:
    letter: dict[str, object] = {"subject": "About {{ supporter.last_name }}", "body": TEXT_BODY}
    if html:
        letter["html"] = HTML_BODY
    return Campaign.model_validate(
        {
            "slug": "camp",
            "title": "Guardians for children",
            "target": {"kind": "mp"},
            "letter": letter,
        }
    )


def supporter(**kw: object) -> Supporter:
    base: dict[str, object] = {
        "first_name": "Siân",
        "last_name": "Ó Briain",
        "email": "sian@example.org",
        "postcode": "GU11 1AA",
        "address_lines": ["1 Road", "Aldershot"],
        "comment": "hello",
    }
    return Supporter(**{**base, **kw})  # type: ignore[arg-type]


def parse(msg: EmailMessage) -> EmailMessage:
    """As a receiving server would see it: serialised for SMTP as the mailer sends it (its own
    bytes for single-part messages, else the email package's), parsed back."""
    data = smtp_bytes(msg) or msg.as_bytes(policy=email.policy.SMTP)
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def as_smtplib_writes(msg: EmailMessage) -> bytes:
    """What ``smtplib.SMTP.send_message`` hands to the server for ``msg``."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(copy.copy(msg), linesep="\r\n")
    return out.getvalue()


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(msg: EmailMessage) -> str | None:
    part = msg.get_body(("html",))
    return None if part is None else str(part.get_content())


SID = uuid.UUID("12345678-1234-5678-1234-567812345678")
# kind → (builder, the address it goes to, whether it carries Reply-To)
Build = Callable[[Supporter, Campaign], EmailMessage]
KINDS: dict[str, tuple[Build, str]] = {
    "confirmation": (
        lambda s, c: compose.confirmation(SID, c, s, "https://dearmp.test/confirm/t1", SETTINGS),
        "supporter",
    ),
    "reminder": (
        lambda s, c: compose.confirmation(
            SID, c, s, "https://dearmp.test/confirm/t2", SETTINGS, reminder=True
        ),
        "supporter",
    ),
    "letter": (lambda s, c: compose.letter(SID, c, s, MP, SETTINGS), "target"),
    "copy": (lambda s, c: compose.copy(SID, c, s, MP, SETTINGS), "supporter"),
    "unresolvable": (
        lambda s, c: compose.unresolvable_notice(
            SID, c, s, "somewhere_else", "That postcode is not in the UK.", SETTINGS
        ),
        "supporter",
    ),
    "held": (
        lambda s, c: compose.held_notice(SID, c, s, "Runcorn and Helsby", SETTINGS),
        "supporter",
    ),
    "repeat": (
        lambda s, c: compose.already_signed(SID, c, s, "sent", MP.name, SETTINGS),
        "supporter",
    ),
}
UNCONFIRMED = ("confirmation", "reminder", "repeat")  # to an address nobody has confirmed
ALLOWED_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "x-dearmp-campaign",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
PART_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}


def check_structure(parsed: EmailMessage, kind: str, to_addr: str) -> None:
    """No header beyond the expected ones, none twice, exactly one recipient, lines ≤ 998."""
    names = [k.lower() for k in parsed]
    assert set(names) <= ALLOWED_HEADERS, (
        f"{kind}: unexpected headers {set(names) - ALLOWED_HEADERS}"
    )
    assert len(names) == len(set(names)), f"{kind}: a header appears twice: {names}"
    for header in ("bcc", "cc", "sender", "resent-to"):
        assert parsed[header] is None
    to = parsed["To"].addresses
    assert len(to) == 1 and to[0].addr_spec == to_addr, f"{kind}: To is {parsed['To']}"
    assert len(parsed["From"].addresses) == 1
    if kind == "letter":
        assert len(parsed["Reply-To"].addresses) == 1
    else:
        assert parsed["Reply-To"] is None
    for part in parsed.walk():
        if part is not parsed:
            assert {k.lower() for k in part} <= PART_HEADERS
    raw = parsed.as_bytes(policy=email.policy.SMTP)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii(), "7-bit clean: encoded words in headers, quoted-printable bodies"
    for part in parsed.walk():
        if not part.is_multipart():
            assert part["Content-Transfer-Encoding"] in ("7bit", "quoted-printable")
            assert part.get_content_charset() == "utf-8"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("first", "last"), [("Siân", "Ó Briain"), ("Zoë", "王"), ("王", "小明"), ("Jo", "Bloggs")]
)
def test_every_kind_round_trips_names_and_headers(kind: str, first: str, last: str) -> None:
    build, to = KINDS[kind]
    s = supporter(first_name=first, last_name=last, comment="Tom & Jerry <3")
    parsed = parse(build(s, campaign(html=True)))
    to_addr = MP.email if to == "target" else s.email
    check_structure(parsed, kind, str(to_addr))
    assert parsed["Message-ID"] == f"<{kind}.{SID}@dearmp.example>"
    assert parsed["X-DearMP-Campaign"] == "camp" and parsed["Date"].datetime is not None
    if kind == "letter":
        assert parsed["From"].addresses[0].display_name == f"{first} {last} via Dear MP"
        assert parsed["From"].addresses[0].addr_spec == "letters@dearmp.example"
        assert parsed["Reply-To"].addresses[0].display_name == f"{first} {last}"
        assert parsed["Reply-To"].addresses[0].addr_spec == s.email
        assert parsed["To"].addresses[0].display_name == "Real Member"
        assert parsed["Subject"] == f"About {last}"
    else:
        assert parsed["From"].addresses[0].addr_spec == "hello@dearmp.example"
        named = "" if kind in UNCONFIRMED else f"{first} {last}"
        assert parsed["To"].addresses[0].display_name == named
    text = text_of(parsed)
    if kind in ("copy", "unresolvable"):
        assert text.startswith(f"Dear {first},\n")
    if kind in UNCONFIRMED:  # anyone may have typed the name: it is never shown
        assert text.startswith("Hello,\n") and first not in text and last not in text
    if kind in ("letter", "copy"):
        letter = f"Dear Real Member,\nTom & Jerry <3\n{first} {last}\n1 Road\nAldershot\nGU11 1AA\n"
        assert letter in text  # the text part as typed, nothing escaped


def test_the_reminder_is_its_own_message_with_its_own_link() -> None:
    c = campaign(html=False)
    first = parse(KINDS["confirmation"][0](supporter(), c))
    reminder = parse(KINDS["reminder"][0](supporter(), c))
    assert reminder["Subject"] == "Reminder: Confirm your signature: Guardians for children"
    assert first["Message-ID"] != reminder["Message-ID"]
    assert "https://dearmp.test/confirm/t2" in text_of(reminder)
    assert "only reminder" in text_of(reminder)


def test_html_part_escapes_what_supporters_typed_and_text_keeps_it() -> None:
    evil = "<script>alert('x')</script> & <b>bold</b> \"quoted\""
    s = supporter(first_name="<img src=x onerror=alert(1)>", comment=evil)
    c = campaign(html=True)
    for kind in ("letter", "copy"):
        parsed = parse(KINDS[kind][0](s, c))
        html = html_of(parsed)
        assert html is not None, f"{kind} has no HTML part"
        assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
        assert (
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
        )
        assert "&amp;lt;" not in html, "escaped twice"
        assert "<p>Dear Real Member,</p>" in html  # the campaign's own markup stays markup
        assert evil in text_of(parsed)
    copy_html = html_of(parse(KINDS["copy"][0](s, c)))
    assert copy_html is not None and "Dear &lt;img src=x onerror=alert(1)&gt;," in copy_html


def test_no_html_part_when_the_campaign_has_no_html_template() -> None:
    for kind in KINDS:
        parsed = parse(KINDS[kind][0](supporter(), campaign(html=False)))
        assert html_of(parsed) is None and not parsed.is_multipart()


INJECTIONS = [
    "Jo\r\nBcc: victim@example.com",
    "Jo\nTo: x@example.com",
    "Jo\rCc: x@example.com",
    "Jo\r\n\r\nbody starts here",
    "=?utf-8?q?Jo=0D=0ABcc:_v@example.com?=",
    "=?utf-8?b?Sm8NCkJjYzogdkBleGFtcGxlLmNvbQ==?=",
    "Jo\u2028Bcc: v@example.com",
    "Jo\u2029Bcc: v@example.com",
    "Jo\x85Bcc: v@example.com",
    "Jo\x0bBcc: v@example.com\x0c",
    "Jo\x00Bcc: v@example.com",
    "Jo, Other <other@example.com>",
    '"Jo" <jo@example.com>, v@example.com',
    "J" * 5000,
    ("word " * 2000).strip(),
]
LINE_BREAKS = re.compile(r"[\x00-\x1f\x85\u2028\u2029]+")
FIELDS = ["first_name", "last_name", "email", "postcode", "address_lines", "comment"]


@pytest.mark.parametrize("field", [f for f in FIELDS if f != "email"])
@pytest.mark.parametrize("evil", INJECTIONS, ids=range(len(INJECTIONS)))
def test_header_injection_in_any_field_adds_no_header_or_recipient(field: str, evil: str) -> None:
    """Hostile text in any field but the address still builds every message (an exception here
    fails the test), and never becomes a header or a recipient."""
    value: object = [evil, evil] if field == "address_lines" else evil
    s = supporter(**{field: value})
    for kind, (build, to) in KINDS.items():
        parsed = parse(build(s, campaign(html=True)))
        to_addr = MP.email if to == "target" else s.email
        check_structure(parsed, kind, str(to_addr))
        if kind == "letter" and field in ("first_name", "last_name"):
            display = parsed["From"].addresses[0].display_name
            assert "\n" not in display and "\r" not in display
        if field in ("comment", "address_lines") and kind in ("letter", "copy"):
            # The body keeps even hostile text as text: every visible run of it intact after
            # decoding (line breaks of any kind may be normalised).
            body = text_of(parsed)
            assert all(chunk in body for chunk in LINE_BREAKS.split(evil) if chunk)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("evil", INJECTIONS, ids=range(len(INJECTIONS)))
def test_an_injected_supporter_address_is_refused(kind: str, evil: str) -> None:
    """The supporter's own address is the one field meant to make a message unbuildable (the
    handler dead-letters it): none of these is one plain address, so every kind refuses it
    rather than letting it become a header or a recipient."""
    build, _ = KINDS[kind]
    s = supporter(email=f"{evil}@example.org" if "@" not in evil else evil)
    with pytest.raises(ValueError):
        build(s, campaign(html=True))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("html", [False, True])
@pytest.mark.parametrize("typed", [*INJECTIONS, "Siân", "王 小明", "Tom & Jerry <3", ""])
def test_the_bytes_the_mailer_sends_are_what_smtplib_would_write(
    kind: str, html: bool, typed: str
) -> None:
    """``shared.mail.smtp_bytes`` (the mailer's fast path) must write a single-part message
    byte for byte as smtplib's own generator does, whatever the supporter typed; multipart
    messages are left to smtplib."""
    build, _ = KINDS[kind]
    # Nothing here is meant to be refused: a message that fails to build fails the test.
    msg = build(supporter(first_name=typed or "Jo", comment=typed), campaign(html=html))
    fast = smtp_bytes(msg)
    if msg.is_multipart():  # the letter and its copy, when the campaign has HTML
        assert fast is None and html
    else:
        assert fast == as_smtplib_writes(msg)


@pytest.mark.parametrize(
    ("language", "day"),
    [("en", "8 December 2026"), ("cy", "8 Rhagfyr 2026"), ("fr", "8 décembre 2026")],
)
def test_dates_in_emails_are_written_as_in_the_uk_in_each_language(language: str, day: str) -> None:
    """Issue 26: English emails said "December 8, 2026" (Babel's American ``en``)."""
    from datetime import date, datetime

    waits = compose.copy(
        SID,
        campaign(html=False),
        supporter(language=language),
        MP,
        SETTINGS,
        waits_for=date(2026, 12, 8),
    )
    assert day in text_of(waits) and "December 8" not in text_of(waits)
    went = compose._templates(language).filters["when"](datetime(2026, 12, 8, 23, 30))
    assert went == day  # in December the UK keeps UTC: 23:30 is still the 8th
