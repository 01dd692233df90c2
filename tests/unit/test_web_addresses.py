"""The "no web address" rule on names and address lines (issue 25): upper case, bare IP addresses
and look-alike dots are refused after NFKC; ordinary names and addresses with dots still pass."""

from __future__ import annotations

import pytest

from services.intake.forms import check_signature
from tests.support import make_signature

LINE_FIELDS = ("first_name", "last_name", "address_line1", "address_line2", "town")

REFUSED = [
    "EVIL.SUPPORT",
    "Evil.Support",
    "PAYPAL.COM.EVIL.LONDON",
    "1.2.3.4",
    "Flat 1, 10.0.0.1",
    "1.2.3.4:8080",
    "0x7f.0.0.1",
    "[2001:db8::1]",
    "ｅｖｉｌ．ｃｏｍ",  # full-width letters and dot
    "ＥＶＩＬ．ＳＵＰＰＯＲＴ",
    "evil。com",  # ideographic full stop: a dot to a browser
    "evil｡support",  # half-width ideographic full stop
    "evil﹒support",  # small full stop
    "evil․support",  # one dot leader
    "ｗｗｗ．example",
    "еvil.com",  # a Cyrillic е
    "Jo EVIL.SUPPORT.",
    "HTTPS://EVIL",
    # Still refused, as before.
    "evil.example",
    "bit.ly",
    "www.evil",
]

ACCEPTED = [
    "J. R. R. Tolkien",
    "J.R.R. Tolkien",
    "St. John",
    "St.Albans",
    "Flat 2.1",
    "1.5 Mill Lane",
    "Unit 1.2.3",
    "Siân Ó Briain-Jones",
    "O'Neill",
    "Mr. Smith Jr.",
]


def _errors(field: str, value: str) -> dict[str, str]:
    return check_signature({**make_signature(), field: value}, needs_mp=True).errors


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.parametrize("field", LINE_FIELDS)
def test_web_addresses_are_refused_in_every_name_and_address_field(field: str, value: str) -> None:
    assert _errors(field, value).get(field, "").endswith("cannot contain a web address"), (
        field,
        value,
    )


@pytest.mark.parametrize("value", ACCEPTED)
@pytest.mark.parametrize("field", LINE_FIELDS)
def test_ordinary_names_and_addresses_with_dots_pass(field: str, value: str) -> None:
    assert field not in _errors(field, value), (field, value)


def test_what_is_checked_is_what_is_kept_nfkc() -> None:
    """Full-width and styled letters are kept in their plain form: the MP's From line shows
    exactly the text the rule looked at."""
    checked = check_signature(
        {**make_signature(), "first_name": "Ｊｏ", "town": "𝐋𝐞𝐞𝐝𝐬"}, needs_mp=True
    )
    assert checked.ok, checked.errors
    assert checked.supporter is not None
    assert checked.supporter.first_name == "Jo"
    assert checked.supporter.address_lines[-1] == "Leeds"
