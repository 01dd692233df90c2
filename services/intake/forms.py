"""Checking what a supporter typed: one set of rules for the web form and the JSON API.

Messages follow the GOV.UK Design System: say what to do, in plain words. Anything that could
become a header, a link in an MP's inbox or a formula in a staff spreadsheet is refused (names,
addresses). The comment is the supporter's own words and goes into the letter as typed (a line
may start with ``@``, ``+`` or ``=``); only control characters are dropped. Keeping a formula out
of a spreadsheet is the CSV exports' job, where the cell is written (``admin/exports.safe_cell``,
the digest's CSV in ``services/mailer/compose``).

Error messages are English literals marked with ``N_`` (no f-strings): the pages translate them
when they render them, so every message must be in the catalogue word for word. If you change a
limit, change the messages that state it (tests/integration/test_i18n.py checks they agree).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from services.intake.web_addresses import is_web_address, normalise_line
from shared import postcodes
from shared.i18n_markers import N_
from shared.messages import Language, Supporter

NAME_MAX = 100
ADDRESS_MAX = 200
COMMENT_MAX = 1500
LETTER_MAX = 5000
# What an email address or markup is made of; a slash only between digits (a flat: "2/1").
SYMBOLS_RE = re.compile(r"[@<>]|(?<!\d)/|/(?!\d)")
NAME_SYMBOLS_RE = re.compile(r"[@<>/]")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LINE_BREAK_RE = re.compile(r"[\r\n\u2028\u2029\x85]")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In a letter: control characters but tabs and line breaks, and lone surrogates (not text).
LETTER_JUNK_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")

# The order fields appear on the page: the error summary lists errors in this order.
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "address_line1",
    "address_line2",
    "town",
    "postcode",
    "letter",
    "comment",
    "consent",
)


@dataclass(frozen=True)
class LineMessages:
    """What to say about one single-line field (``required`` is None for optional fields)."""

    required: str | None
    one_line: str
    too_long: str
    formula: str
    web_address: str
    symbols: str
    hidden: str


LINE_MESSAGES = {
    "first_name": LineMessages(
        required=N_("Enter your first name"),
        one_line=N_("Your first name must be on one line"),
        too_long=N_("Your first name must be 100 characters or fewer"),  # NAME_MAX
        formula=N_("Your first name cannot start with = + - or @"),
        web_address=N_("Your first name cannot contain a web address"),
        symbols=N_("Your first name cannot contain @ < > or /"),
        hidden=N_("Your first name cannot contain hidden or special characters"),
    ),
    "last_name": LineMessages(
        required=N_("Enter your last name"),
        one_line=N_("Your last name must be on one line"),
        too_long=N_("Your last name must be 100 characters or fewer"),  # NAME_MAX
        formula=N_("Your last name cannot start with = + - or @"),
        web_address=N_("Your last name cannot contain a web address"),
        symbols=N_("Your last name cannot contain @ < > or /"),
        hidden=N_("Your last name cannot contain hidden or special characters"),
    ),
    "address_line1": LineMessages(
        required=N_("Enter your first address line"),
        one_line=N_("Your first address line must be on one line"),
        too_long=N_("Your first address line must be 200 characters or fewer"),  # ADDRESS_MAX
        formula=N_("Your first address line cannot start with = + - or @"),
        web_address=N_("Your first address line cannot contain a web address"),
        symbols=N_(
            "Your first address line cannot contain @ < > or / (except between numbers, like 2/1)"
        ),
        hidden=N_("Your first address line cannot contain hidden or special characters"),
    ),
    "address_line2": LineMessages(
        required=None,
        one_line=N_("Your second address line must be on one line"),
        too_long=N_("Your second address line must be 200 characters or fewer"),  # ADDRESS_MAX
        formula=N_("Your second address line cannot start with = + - or @"),
        web_address=N_("Your second address line cannot contain a web address"),
        symbols=N_(
            "Your second address line cannot contain @ < > or / (except between numbers, like 2/1)"
        ),
        hidden=N_("Your second address line cannot contain hidden or special characters"),
    ),
    "town": LineMessages(
        required=N_("Enter your town or city"),
        one_line=N_("Your town or city must be on one line"),
        too_long=N_("Your town or city must be 200 characters or fewer"),  # ADDRESS_MAX
        formula=N_("Your town or city cannot start with = + - or @"),
        web_address=N_("Your town or city cannot contain a web address"),
        symbols=N_("Your town or city cannot contain @ < > or /"),
        hidden=N_("Your town or city cannot contain hidden or special characters"),
    ),
}
EMAIL_REQUIRED = N_("Enter your email address")
EMAIL_FORMAT = N_("Enter an email address in the correct format, like name@example.com")
# Mail servers that do not offer SMTPUTF8 cannot take such an address: refused here, with a reason,
# rather than accepted and never delivered.
EMAIL_ASCII = N_(
    "Your email address can only have letters a to z, numbers and symbols like . _ - + before the @"
)
POSTCODE_REQUIRED = N_("Enter your postcode")
POSTCODE_FORMAT = N_("Enter a real postcode, like SW1A 1AA")
# Valid postcodes with no MP at Westminster, keyed by BFPO or by postcode area (see
# shared.postcodes.without_mp; each message begins with no_westminster_mp's reason).
POSTCODE_NO_MP = {
    "BFPO": N_(
        "British Forces Post Office addresses have no constituency, so there is no MP for us to "
        "write to. This campaign can only send letters to MPs at Westminster"
    ),
    "JE": N_(
        "Jersey has no MP at Westminster, so there is no MP for us to write to. "
        "This campaign can only send letters to MPs at Westminster"
    ),
    "GY": N_(
        "Guernsey has no MP at Westminster, so there is no MP for us to write to. "
        "This campaign can only send letters to MPs at Westminster"
    ),
    "IM": N_(
        "The Isle of Man has no MP at Westminster, so there is no MP for us to write to. "
        "This campaign can only send letters to MPs at Westminster"
    ),
}
POSTCODE_NO_MP_OTHER = N_(
    "There is no MP at Westminster for that postcode. "
    "This campaign can only send letters to MPs at Westminster"
)
COMMENT_TOO_LONG = N_("Your message must be 1500 characters or fewer")  # COMMENT_MAX
LETTER_REQUIRED = N_("Enter your letter")
LETTER_TOO_LONG = N_("Your letter must be 5000 characters or fewer")  # LETTER_MAX
LETTER_NOT_EDITABLE = N_("This campaign's letter cannot be edited")
CONSENT_REQUIRED = N_("Tick the box to agree to the terms and privacy notice")
# The form's parser turns bytes that are not UTF-8 into U+FFFD; the API refuses such a body
# outright (400). Refused in both, so the same bytes are treated the same way.
UNREADABLE_MARK = "\ufffd"
UNREADABLE = N_("Some of what you typed could not be read. Type it again")


@dataclass
class Checked:
    supporter: Supporter | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(value: Any) -> str:
    return CONTROL_RE.sub("", str(value or "")).strip()


def _line(value: Any) -> str:
    """A name or an address line: NFKC first (``web_addresses.normalise_line``), so the rules
    check what will be sent, and full-width or styled letters cannot slip a web address past
    them."""
    return _text(normalise_line(str(value or "")))


def hidden_characters(value: str) -> bool:
    """Characters that change how text reads without being seen: format controls (bidi
    overrides, zero-width joiners, tags), private-use and unassigned code points, surrogates.
    This is how look-alike or reversed text gets into an email sent from our domain."""
    return any(unicodedata.category(c) in ("Cf", "Co", "Cn", "Cs") for c in value)


def _single_line(
    errors: dict[str, str],
    name: str,
    value: str,
    *,
    limit: int,
    allow_urls: bool = True,
) -> str:
    """Check one single-line field; required when its messages say what to enter."""
    says = LINE_MESSAGES[name]
    if not value:
        if says.required:
            errors[name] = says.required
        return ""
    if LINE_BREAK_RE.search(value):
        errors[name] = says.one_line
    elif len(value) > limit:
        errors[name] = says.too_long
    elif value.startswith(FORMULA_PREFIXES):
        errors[name] = says.formula
    elif hidden_characters(value):
        errors[name] = says.hidden
    elif not allow_urls and is_web_address(value):
        errors[name] = says.web_address
    elif not allow_urls and (NAME_SYMBOLS_RE if "name" in name else SYMBOLS_RE).search(value):
        errors[name] = says.symbols
    return value


def postcode_without_mp(postcode: str) -> str | None:
    """The message for a valid postcode with no Westminster MP, else None."""
    place = postcodes.without_mp(postcode)
    return None if place is None else POSTCODE_NO_MP.get(place, POSTCODE_NO_MP_OTHER)


def neutralise_comment(comment: str) -> str:
    """Keep the supporter's words as typed, every character of them; drop only control
    characters (NUL and the like, which nothing can store or show) and spaces at the ends of
    lines and of the comment."""
    comment = CONTROL_RE.sub("", comment)
    lines = [
        line.rstrip() for line in comment.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    return "\n".join(lines).strip()


def normalise_letter(text: str) -> str:
    """A supporter's letter as we keep it: control characters (NUL and the like) dropped, every
    kind of line break made ``\n``, spaces at the ends of lines and of the letter trimmed."""
    text = re.sub(r"\r\n?|[\u2028\u2029\x85]", "\n", LETTER_JUNK_RE.sub("", text))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def same_words(a: str, b: str) -> bool:
    """The same text but for spacing and line breaks."""
    return a.split() == b.split()


def check_letter(errors: dict[str, str], value: Any, default: str | None, *, required: bool) -> str:
    """The supporter's own wording of the letter's message block: "" when it is the campaign's
    default (so the campaign's words are used). ``default`` is None when the campaign's letter is
    not editable: then any wording is refused. ``required``: the form showed the field."""
    letter = normalise_letter(str(value or ""))
    if default is None:
        if letter:
            errors["letter"] = LETTER_NOT_EDITABLE
        return ""
    if not letter:
        if required:
            errors["letter"] = LETTER_REQUIRED
        return ""
    if len(letter) > LETTER_MAX:
        errors["letter"] = LETTER_TOO_LONG
    return "" if same_words(letter, default) else letter


def check_signature(
    data: dict[str, Any],
    *,
    needs_mp: bool,
    letter_default: str | None = None,
    letter_required: bool = False,
    language: Language = "en",
) -> Checked:
    """Validate and normalise a signature (``language``: the one it was signed in).
    ``needs_mp``: the campaign writes to the supporter's MP,
    so the postcode must have one. ``letter_default``: the words of the letter the supporter may
    change (None when the campaign's letter is not editable); ``letter_required``: the field was
    on the form, so it cannot come back empty (the API may leave it out: the default is used)."""
    errors: dict[str, str] = {}
    first = _single_line(
        errors,
        "first_name",
        _line(data.get("first_name")),
        limit=NAME_MAX,
        allow_urls=False,
    )
    last = _single_line(
        errors,
        "last_name",
        _line(data.get("last_name")),
        limit=NAME_MAX,
        allow_urls=False,
    )
    email = _text(data.get("email"))
    if not email:
        errors["email"] = EMAIL_REQUIRED
    else:
        try:
            # ASCII only (no SMTPUTF8); an international domain is kept in its ASCII form
            # (xn--…), so it is stored, compared and sent the same way everywhere.
            checked = validate_email(email, check_deliverability=False, allow_smtputf8=False)
            email = checked.ascii_email or checked.normalized
        except EmailNotValidError:
            local = email.rpartition("@")[0]
            errors["email"] = EMAIL_ASCII if not local.isascii() else EMAIL_FORMAT
    line1 = _single_line(
        errors,
        "address_line1",
        _line(data.get("address_line1")),
        limit=ADDRESS_MAX,
        allow_urls=False,
    )
    line2 = _single_line(
        errors,
        "address_line2",
        _line(data.get("address_line2")),
        limit=ADDRESS_MAX,
        allow_urls=False,
    )
    town = _single_line(
        errors,
        "town",
        _line(data.get("town")),
        limit=ADDRESS_MAX,
        allow_urls=False,
    )
    raw_postcode = _text(data.get("postcode"))
    postcode = postcodes.normalise(raw_postcode)
    if not raw_postcode:
        errors["postcode"] = POSTCODE_REQUIRED
    elif not postcodes.is_valid(postcode):
        errors["postcode"] = POSTCODE_FORMAT
    elif needs_mp and (no_mp := postcode_without_mp(postcode)):
        errors["postcode"] = no_mp
    letter = check_letter(errors, data.get("letter"), letter_default, required=letter_required)
    comment = neutralise_comment(str(data.get("comment") or ""))
    if len(comment) > COMMENT_MAX:
        errors["comment"] = COMMENT_TOO_LONG
    if not _truthy(data.get("consent")):
        errors["consent"] = CONSENT_REQUIRED
    for name in FIELDS:  # bytes that were not UTF-8: the form's parser made them U+FFFD
        if UNREADABLE_MARK in str(data.get(name) or ""):
            errors[name] = UNREADABLE
    if errors:
        return Checked(None, {k: errors[k] for k in FIELDS if k in errors})
    supporter = Supporter(
        first_name=first,
        last_name=last,
        email=email,
        postcode=postcode,
        address_lines=[line for line in (line1, line2, town) if line],
        comment=comment,
        letter=letter,
        opt_in=_truthy(data.get("opt_in")),
        language=language,
    )
    return Checked(supporter)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "y")
