"""Supporters' own wording of an editable letter: checked by intake, put in the letter by the mailer.

The wording is only ever a value: never compiled as a template (``{{ 7*7 }}`` arrives as typed),
escaped in the HTML part, and only inside the message block, so never in a header.
"""

from __future__ import annotations

import email
import email.policy
import uuid
from email.message import EmailMessage

import pytest

from services.intake import forms
from services.mailer import compose
from shared.campaigns import Campaign
from shared.config import Settings
from shared.messages import Supporter, Target

SETTINGS = Settings(mail_domain="dearmp.example", sandbox_to="sandbox@example.org")
TARGET = Target(name="The Home Secretary", email="hs@example.org", kind="fixed")
SID = uuid.UUID("12345678-1234-5678-1234-567812345678")
BODY = (
    "Dear {{ target.name }},\n\n"
    "{% block message -%}\nPlease fund {{ campaign.title }}.\n\nIt matters.\n{%- endblock %}\n"
    "{% if supporter.comment %}\n{{ supporter.comment }}\n{% endif %}\n"
    "Yours sincerely,\n\n{{ supporter.full_name }}\n{{ supporter.address }}\n"
)
HTML = (
    "<p>Dear {{ target.name }},</p>\n"
    "{% block message %}<p>Please fund {{ campaign.title }}.</p><p>It matters.</p>{% endblock %}\n"
    "<p>Yours sincerely,<br>{{ supporter.full_name }}</p>\n"
)
HOSTILE = (
    "Dear {{ 7*7 }} {{ config }} {% raw %}{% endraw %} {% for x in range(3) %}{{x}}{% endfor %}\n"
    "<script>alert('x')</script> & <b>bold</b> {{ supporter.email }}\n\n"
    "Annwyl Ysgrifennydd Cartref, diolch yn fawr iawn — Siân Ŵyn\n"
    "请帮助这些孩子。"
)


def campaign(*, editable: bool = True, html: bool = True) -> Campaign:
    letter: dict[str, object] = {"subject": "Support", "body": BODY, "editable": editable}
    if html:
        letter["html"] = HTML
    return Campaign.model_validate(
        {
            "slug": "camp",
            "title": "child victims",
            "target": {"kind": "fixed", "name": TARGET.name, "email": TARGET.email},
            "letter": letter,
        }
    )


def supporter(**kw: object) -> Supporter:
    base: dict[str, object] = {
        "first_name": "Jo",
        "last_name": "Bloggs",
        "email": "jo@example.org",
        "postcode": "GU11 1AA",
        "address_lines": ["1 Road"],
    }
    return Supporter(**{**base, **kw})  # type: ignore[arg-type]


def parse(msg: EmailMessage) -> EmailMessage:
    return email.message_from_bytes(
        msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default
    )  # type: ignore[return-value]


def parts(msg: EmailMessage) -> tuple[str, str | None]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    return (
        str(text.get_content()).replace("\r\n", "\n"),
        None if html is None else str(html.get_content()),
    )


# -- the mailer --------------------------------------------------------------------------------


def test_without_own_words_the_campaigns_words_are_sent() -> None:
    rendered = compose.render_letter(campaign(), supporter(), TARGET)
    assert rendered.text == (
        "Dear The Home Secretary,\n\nPlease fund child victims.\n\nIt matters.\n\n"
        "Yours sincerely,\n\nJo Bloggs\n1 Road\nGU11 1AA\n"
    )
    assert rendered.html is not None
    assert "<p>Please fund child victims.</p><p>It matters.</p>" in rendered.html


def test_own_words_replace_the_message_block_and_nothing_else() -> None:
    rendered = compose.render_letter(
        campaign(), supporter(letter="My own first line.\nSecond line.", comment="Hi"), TARGET
    )
    assert rendered.text == (
        "Dear The Home Secretary,\n\nMy own first line.\nSecond line.\n\nHi\n\n"
        "Yours sincerely,\n\nJo Bloggs\n1 Road\nGU11 1AA\n"
    )
    assert rendered.html is not None
    assert "<p>Dear The Home Secretary,</p>" in rendered.html
    assert "<p>My own first line.<br>\nSecond line.</p>" in rendered.html
    assert "Please fund" not in rendered.html and "Please fund" not in rendered.text
    assert rendered.subject == "Support"


def test_own_words_are_never_run_as_a_template_and_are_escaped_in_html() -> None:
    s = supporter(letter=HOSTILE)
    for c in (campaign(html=True), campaign(html=False)):
        parsed = parse(compose.letter(SID, c, s, TARGET, SETTINGS))
        text, html = parts(parsed)
        assert HOSTILE in text  # literally, as typed: nothing evaluated, nothing escaped
        letter = text.split("\n-- \n")[0]  # the office footer under it names their address
        assert "49" not in letter and "012" not in letter and "jo@example.org" not in letter
        if html is None:
            continue
        assert "<script>" not in html and "<b>bold" not in html
        assert (
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
        )
        assert "{{ 7*7 }} {{ config }} {% raw %}{% endraw %}" in html
        assert "Siân Ŵyn" in html and "请帮助这些孩子。" in html
        assert "&amp;lt;" not in html, "escaped twice"
        # Only the body: the wording adds nothing to any header.
        assert "Dear" not in str(parsed["Subject"]) and parsed["Bcc"] is None
    copy = parse(compose.copy(SID, campaign(), s, TARGET, SETTINGS))
    copy_text, copy_html = parts(copy)
    assert HOSTILE in copy_text
    assert copy_html is not None and "<script>" not in copy_html
    assert "&lt;script&gt;" in copy_html


def test_a_campaign_that_is_not_editable_ignores_own_words() -> None:
    s = supporter(letter="Replace everything {{ 7*7 }}")
    rendered = compose.render_letter(campaign(editable=False), s, TARGET)
    assert "Replace everything" not in rendered.text
    assert "Please fund child victims." in rendered.text
    assert rendered.html is not None and "Replace everything" not in rendered.html


def test_own_words_cannot_be_reached_from_the_template_context() -> None:
    """Only the message block carries them: a template naming supporter.letter fails to render
    rather than placing unchecked text anywhere else (say, in the subject)."""
    context = compose.letter_context(campaign(), supporter(letter="x"), TARGET)
    assert "letter" not in context["supporter"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "evil",
    ["Jo\r\nBcc: victim@example.com", "x\r\n\r\n--boundary\r\nContent-Type: text/html", "\x00\x0b"],
)
def test_own_words_add_no_header(evil: str) -> None:
    for build in (compose.letter, compose.copy):
        parsed = parse(build(SID, campaign(), supporter(letter=evil), TARGET, SETTINGS))
        assert parsed["Bcc"] is None and len(parsed["To"].addresses) == 1
        assert not any(k.lower() == "content-type" and "html" in v for k, v in parsed.items())


# -- intake's checks ---------------------------------------------------------------------------

DEFAULT = "Please fund child victims.\n\nIt matters."


def check(value: object, default: str | None = DEFAULT, *, required: bool = True):  # type: ignore[no-untyped-def]
    errors: dict[str, str] = {}
    return forms.check_letter(errors, value, default, required=required), errors


def test_the_default_wording_is_stored_as_empty() -> None:
    assert check(DEFAULT) == ("", {})
    assert check("  Please fund child\r\nvictims.\r\n\r\n\r\nIt   matters.  \n") == ("", {})


def test_own_words_are_cleaned_not_refused() -> None:
    text, errors = check("Line one\r\nline two\rline three\u2028four\x00\x07\x1b\x7f\x9b\tend  \n")
    assert errors == {}
    assert text == "Line one\nline two\nline three\nfour\tend"
    assert check("Annwyl Siân, 请帮助\n{{ 7*7 }}") == ("Annwyl Siân, 请帮助\n{{ 7*7 }}", {})


def test_the_letter_is_required_when_shown_and_has_a_limit() -> None:
    assert check("  \r\n ") == ("", {"letter": forms.LETTER_REQUIRED})
    assert check("", required=False) == ("", {})  # the API may leave it out
    assert check("x" * forms.LETTER_MAX) == ("x" * forms.LETTER_MAX, {})
    assert check("x" * (forms.LETTER_MAX + 1))[1] == {"letter": forms.LETTER_TOO_LONG}
    assert f"Your letter must be {forms.LETTER_MAX} characters or fewer" == forms.LETTER_TOO_LONG


def test_a_letter_that_cannot_be_edited_refuses_own_words() -> None:
    assert check("Mine", None) == ("", {"letter": forms.LETTER_NOT_EDITABLE})
    assert check("", None) == ("", {})


def test_check_signature_carries_the_wording_in_the_supporter() -> None:
    data = {
        "first_name": "Jo",
        "last_name": "Bloggs",
        "email": "jo@example.org",
        "address_line1": "1 Road",
        "town": "Aldershot",
        "postcode": "GU11 1AA",
        "consent": True,
        "letter": "My words",
    }
    checked = forms.check_signature(data, needs_mp=False, letter_default=DEFAULT)
    assert checked.supporter is not None and checked.supporter.letter == "My words"
    refused = forms.check_signature(data, needs_mp=False)
    assert refused.errors == {"letter": forms.LETTER_NOT_EDITABLE}
    too_long = forms.check_signature(
        {**data, "letter": "x" * 6000, "first_name": ""}, needs_mp=False, letter_default=DEFAULT
    )
    assert list(too_long.errors) == ["first_name", "letter"]  # in the order of the page


def test_the_campaigns_disclosure_line_ends_the_letter_as_words_not_markup() -> None:
    line = "I am sending this through the <Guardians> campaign at https://example.org/c/g"
    c = campaign().model_copy(update={"disclosure": line})
    rendered = compose.render_letter(c, supporter(), TARGET)
    assert rendered.text.rstrip().endswith(line)
    assert rendered.html is not None
    assert "<p>I am sending this through the &lt;Guardians&gt; campaign" in rendered.html
    assert "<Guardians>" not in rendered.html
    plain = compose.render_letter(campaign(), supporter(), TARGET)
    assert line not in plain.text  # no disclosure: nothing added
