"""The public pages in English, Welsh and French; the letter itself is never translated.

The catalogue tests fail when a message can reach a page without a Welsh and a French
translation: a template or Python string not yet extracted into messages.pot, an entry left
empty or fuzzy, or an error message built at run time (which no catalogue can hold).
"""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from starlette.requests import Request

from services.intake import forms, helprequests, i18n
from services.intake.app import create_app
from services.intake.handlers import HANDLERS
from shared import postcodes
from shared.config import Settings
from shared.handling import Dispatcher
from shared.messages import (
    Constituency,
    Envelope,
    LetterFailed,
    LetterSent,
    SignatureResolved,
    SignatureUnresolvable,
    Supporter,
    Target,
)
from shared.reasons import REASONS
from shared.supporters import supporter_key
from shared.tokens import make_token
from tests.support import ROOT, confirm, csrf_token_in, make_signature

SLUG = "guardians-for-children"
PAGE = f"/c/{SLUG}"
LOCALES = ROOT / "services" / "intake" / "locales"
POT = LOCALES / "messages.pot"
TRANSLATED = ("cy", "fr")
# Each service that writes to supporters: its catalogue and the sources extracted into it
# (the commands are in shared/i18n.py).
CATALOGUED = {
    "intake": ("services/intake", "shared/reasons.py"),
    "mailer": ("services/mailer", "shared/reasons.py"),
    "updates": ("services/updates",),
}


def locales_of(service: str) -> Path:
    return ROOT / "services" / service / "locales"


# Where error messages are made; they are stored in English and translated when shown.
MESSAGE_SOURCES = (
    ROOT / "services" / "intake" / "forms.py",
    ROOT / "services" / "intake" / "helprequests.py",
    ROOT / "shared" / "reasons.py",
)
PLACEHOLDER_RE = re.compile(r"%\((\w+)\)s")
NBSP = "\u00a0"


# --- the catalogues -------------------------------------------------------------------------


def read_catalogue(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def message_ids(catalogue: Catalog) -> set[str | tuple[str, ...]]:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalogue if m.id}


@pytest.fixture(scope="module")
def catalogues() -> dict[str, Catalog]:
    return {
        lang: read_catalogue(LOCALES / lang / "LC_MESSAGES" / "messages.po", lang)
        for lang in TRANSLATED
    }


def translated(message: Message | None) -> bool:
    if message is None or message.fuzzy:
        return False
    strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return bool(strings) and all(s.strip() for s in strings)


@pytest.mark.parametrize("service", CATALOGUED)
def test_the_template_is_up_to_date_with_the_code(service: str, tmp_path: Path) -> None:
    """Extracting again finds nothing that messages.pot lacks (the commands: shared/i18n.py)."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from babel.messages.frontend import main; sys.exit(main())",
            "--quiet",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "-o",
            str(fresh),
            *CATALOGUED[service],
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    pot = locales_of(service) / "messages.pot"
    missing = message_ids(read_catalogue(fresh)) - message_ids(read_catalogue(pot))
    assert not missing, f"not in messages.pot (extract and update, see i18n.py): {missing}"


@pytest.mark.parametrize("lang", TRANSLATED)
@pytest.mark.parametrize("service", CATALOGUED)
def test_every_message_is_translated(service: str, lang: str) -> None:
    catalogue = read_catalogue(locales_of(service) / lang / "LC_MESSAGES" / "messages.po", lang)
    template = read_catalogue(locales_of(service) / "messages.pot")
    assert len(template) > 5
    assert catalogue.num_plurals == (5 if lang == "cy" else 2)
    problems = []
    for entry in template:
        if not entry.id:
            continue
        message = catalogue.get(entry.id)
        if not translated(message):
            problems.append(f"untranslated or fuzzy: {entry.id!r}")
            continue
        assert message is not None
        if entry.pluralizable:
            if len(message.string) != catalogue.num_plurals:
                problems.append(f"needs {catalogue.num_plurals} plural forms: {entry.id!r}")
            wanted = set(PLACEHOLDER_RE.findall(entry.id[0]))
            found = [set(PLACEHOLDER_RE.findall(s)) for s in message.string]
        else:
            wanted = set(PLACEHOLDER_RE.findall(entry.id))
            found = [set(PLACEHOLDER_RE.findall(message.string))]
        if any(f != wanted for f in found):
            problems.append(f"placeholders differ: {entry.id!r}")
        if entry.id.count("<a ") != str(message.string).count("<a "):
            problems.append(f"links differ: {entry.id!r}")
    obsolete = message_ids(catalogue) - message_ids(template)
    assert not problems, problems
    assert not obsolete, f"in {lang} but no longer in messages.pot: {obsolete}"


def test_no_compiled_catalogues_are_kept() -> None:
    assert not list((ROOT / "services").glob("*/locales/**/*.mo")), (
        "catalogues are compiled in memory; delete the .mo files"
    )


def _n_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "N_"
    ]


@pytest.mark.parametrize("path", MESSAGE_SOURCES, ids=lambda p: p.name)
def test_error_messages_are_marked_literals(path: Path) -> None:
    """No message is built at run time (an f-string, a variable, ``+``): only literals can be
    translated. Every ``errors[...] =`` takes a marked constant, never text written in place."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for call in _n_calls(tree):
        assert len(call.args) == 1 and isinstance(call.args[0], ast.Constant), (
            f"{path.name}:{call.lineno}: N_() needs one string literal"
        )
        assert isinstance(call.args[0].value, str)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Subscript) and getattr(target.value, "id", "") == "errors":
                texts = [
                    n for n in ast.walk(node.value) if isinstance(n, ast.JoinedStr | ast.BinOp)
                ] + [
                    n
                    for n in ast.walk(node.value)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                ]
                assert not texts, f"{path.name}:{node.lineno}: use a constant marked with N_()"


def _marked_literals() -> set[str]:
    found: set[str] = set()
    for path in MESSAGE_SOURCES:
        for call in _n_calls(ast.parse(path.read_text(encoding="utf-8"))):
            found.add(call.args[0].value)  # type: ignore[attr-defined]
    return found


def _every_signature_error() -> dict[str, set[str]]:
    """Run the checks over input that trips every rule; the messages each field produced."""
    produced: dict[str, set[str]] = {}

    def check(needs_mp: bool = True, letter_default: str | None = None, **changes: Any) -> None:
        result = forms.check_signature(
            {**make_signature(), **changes},
            needs_mp=needs_mp,
            letter_default=letter_default,
            letter_required=True,
        )
        for name, message in result.errors.items():
            produced.setdefault(name, set()).add(message)

    for name in forms.LINE_MESSAGES:
        limit = forms.NAME_MAX if name.endswith("_name") else forms.ADDRESS_MAX
        for value in ("", "one\ntwo", "x" * (limit + 1), "=SUM(A1)", "see www.example.com"):
            check(**{name: value})
    for email in ("", "not-an-email"):
        check(email=email)
    for postcode in ("", "NOT A POSTCODE", "BFPO 57", "JE2 3AB", "GY1 1AA", "IM1 1AA"):
        check(postcode=postcode)
    check(comment="x" * (forms.COMMENT_MAX + 1))
    check(letter="x" * (forms.LETTER_MAX + 1), letter_default="Words")
    check(letter="", letter_default="Words")
    check(letter="Mine")  # a letter that cannot be edited
    check(consent=False)
    return produced


def test_every_message_the_code_can_produce_is_translated(catalogues: dict[str, Catalog]) -> None:
    produced = _every_signature_error()
    messages = set().union(*produced.values())
    messages |= set(REASONS.values())
    messages |= {
        helprequests.MESSAGE_REQUIRED,
        helprequests.MESSAGE_TOO_LONG,
        helprequests.NAME_FORMULA,
        forms.POSTCODE_NO_MP_OTHER,
    }
    messages |= _marked_literals()
    # Every rule was tripped: each field's messages are all the ones it has.
    for name, says in forms.LINE_MESSAGES.items():
        expected = {says.one_line, says.too_long, says.formula, says.web_address}
        assert produced[name] == expected | ({says.required} if says.required else set())
    assert set(forms.POSTCODE_NO_MP.values()) <= produced["postcode"]
    assert produced["letter"] == {
        forms.LETTER_REQUIRED,
        forms.LETTER_TOO_LONG,
        forms.LETTER_NOT_EDITABLE,
    }
    for lang, catalogue in catalogues.items():
        missing = sorted(m for m in messages if not translated(catalogue.get(m)))
        assert not missing, f"{lang}: {missing}"


def test_messages_keep_their_english_wording() -> None:
    """The messages read as they did when they were built from a label and a limit."""
    labels = {
        "first_name": ("first name", forms.NAME_MAX),
        "last_name": ("last name", forms.NAME_MAX),
        "address_line1": ("first address line", forms.ADDRESS_MAX),
        "address_line2": ("second address line", forms.ADDRESS_MAX),
        "town": ("town or city", forms.ADDRESS_MAX),
    }
    assert set(labels) == set(forms.LINE_MESSAGES)
    for name, (label, limit) in labels.items():
        says = forms.LINE_MESSAGES[name]
        assert says.required == (None if name == "address_line2" else f"Enter your {label}")
        assert says.one_line == f"Your {label} must be on one line"
        assert says.too_long == f"Your {label} must be {limit} characters or fewer"
        assert says.formula == f"Your {label} cannot start with = + - or @"
        assert says.web_address == f"Your {label} cannot contain a web address"
    assert f"Your message must be {forms.COMMENT_MAX} characters or fewer" == forms.COMMENT_TOO_LONG
    assert f"Your letter must be {forms.LETTER_MAX} characters or fewer" == forms.LETTER_TOO_LONG
    assert (
        f"Your message must be {helprequests.MESSAGE_MAX} characters or fewer"
    ) == helprequests.MESSAGE_TOO_LONG
    samples = {"BFPO": "BFPO 57"} | {area: f"{area}1 1AA" for area in postcodes.CROWN_DEPENDENCIES}
    assert set(samples) == set(forms.POSTCODE_NO_MP)
    for key, postcode in samples.items():
        why = postcodes.no_westminster_mp(postcode)
        assert (
            forms.postcode_without_mp(postcode)
            == forms.POSTCODE_NO_MP[key]
            == (
                f"{why}, so there is no MP for us to write to. "
                "This campaign can only send letters to MPs at Westminster"
            )
        )
    assert forms.postcode_without_mp("SW1A 1AA") is None


# --- dates and languages --------------------------------------------------------------------


def test_relative_dates_are_localised() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    four_years_ago = now - timedelta(days=4 * 365 + 1)
    assert i18n.relative_date(four_years_ago, "en", now=now) == "4 years ago"
    assert i18n.relative_date(four_years_ago, "fr", now=now) == "il y a 4 ans"
    assert i18n.relative_date(four_years_ago, "cy", now=now) == "4 o flynyddoedd yn ôl"
    naive = four_years_ago.replace(tzinfo=None)
    assert i18n.relative_date(naive, "fr", now=now) == "il y a 4 ans"


def _request(query: str = "", **headers: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        }
    )


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("", {}, "en"),
        ("", {"accept_language": "fr-FR,fr;q=0.9"}, "fr"),
        ("", {"accept_language": "de-DE, cy;q=0.5, fr;q=0.7"}, "fr"),
        ("", {"accept_language": "fr;q=0.1, cy-GB"}, "cy"),
        ("", {"accept_language": "fr;q=0, en-GB;q=0.5"}, "en"),
        ("", {"accept_language": "de, *"}, "en"),
        ("", {"accept_language": "nonsense;;q=x,,"}, "en"),
        ("lang=cy", {"accept_language": "fr"}, "cy"),
        ("lang=de", {"cookie": f"{i18n.COOKIE}=fr"}, "fr"),
        ("", {"cookie": f"{i18n.COOKIE}=cy", "accept_language": "fr"}, "cy"),
        ("lang=en", {"cookie": f"{i18n.COOKIE}=cy"}, "en"),
    ],
)
def test_picking_the_language(query: str, headers: dict[str, str], expected: str) -> None:
    assert i18n.pick_locale(_request(query, **headers)) == expected


def test_the_language_signed_in_comes_after_a_choice_and_before_the_browser() -> None:
    """A link opened from a mail app carries no cookie: the signature's language decides
    (issue 26); ``?lang=`` and the cookie (an explicit choice) still win."""
    assert i18n.pick_locale(_request("", accept_language="en-GB,en"), "fr") == "fr"
    assert i18n.pick_locale(_request("lang=cy", accept_language="en"), "fr") == "cy"
    assert i18n.pick_locale(_request("", cookie=f"{i18n.COOKIE}=en"), "fr") == "en"
    assert i18n.pick_locale(_request("", accept_language="cy"), "xx") == "cy"
    assert i18n.pick_locale(_request(""), None) == "en"


def test_dates_and_times_on_pages_are_british_in_english() -> None:
    """One helper (shared/dates.py) for every date and time on a page: "7 December 2026" and
    "22:50" in English (en-GB), never "December 7, 2026" or "10:50 PM" (issue 26)."""
    moment = datetime(2026, 12, 7, 22, 50, 43, tzinfo=UTC)  # 22:50 in London (GMT)
    summer = datetime(2026, 6, 1, 21, 5, tzinfo=UTC)  # 22:05 in London (BST)
    shown = {
        lang: i18n.environment(lang)
        .from_string("{{ m | ukdate }} {{ m | uktime }}|{{ s | ukdate }} {{ s | uktime }}")
        .render(m=moment, s=summer)
        for lang in ("en", "cy", "fr")
    }
    assert shown == {
        "en": "7 December 2026 22:50|1 June 2026 22:05",
        "cy": "7 Rhagfyr 2026 22:50|1 Mehefin 2026 22:05",
        "fr": "7 décembre 2026 22:50|1 juin 2026 22:05",
    }


def test_an_empty_message_stays_empty() -> None:
    """gettext("") would be the catalogue's header."""
    template = i18n.environment("fr").from_string("[{{ _(message) }}]")
    assert template.render(message="") == "[]"


# --- the pages ------------------------------------------------------------------------------


def client_for(settings: Settings, engine: sa.Engine) -> TestClient:
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def add_update(engine: sa.Engine, published_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO campaign_updates (campaign, number, title, body, published_at) "
                "VALUES (:slug, 1, 'We met the minister', 'It went well.', :at)"
            ),
            {"slug": SLUG, "at": published_at},
        )


def letter_text(page: str) -> str:
    match = re.search(
        r'<div class="govuk-details__text" lang="(\w+)">(.*?)</div>', page, flags=re.S
    )
    assert match, "no letter on the page"
    assert match.group(1) == "en"
    return html.unescape(match.group(2))


def error_summary(page: str) -> list[str]:
    match = re.search(r'<ul class="govuk-list govuk-error-summary__list">(.*?)</ul>', page, re.S)
    assert match, "no error summary"
    return [html.unescape(m) for m in re.findall(r'<a href="#\w+">(.*?)</a>', match.group(1))]


def test_the_campaign_page_in_french(settings, engine) -> None:
    add_update(engine, datetime.now(UTC) - timedelta(days=4 * 365 + 30))
    client = client_for(settings, engine)
    response = client.get(PAGE, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert response.status_code == 200
    assert response.headers["content-language"] == "fr"
    page = response.text
    assert '<html lang="fr">' in page
    for text in (
        "Aller au contenu principal",
        "Lire la lettre",
        "Signez et envoyez la lettre",
        "Prénom",
        "Code postal",
        "personne a signé",  # 0 and 1 take the singular in French
        f"Notre objectif{NBSP}: 10\u202f000 signatures",
        f"Mise à jour n°{NBSP}1",
        "il y a 4 ans",
        'J’accepte les <a href="/terms">conditions d’utilisation</a> et la '
        '<a href="/privacy">politique de confidentialité</a>.',
        "Vous ne pouvez pas signer",
    ):
        assert text in page, text
    for english in ("Read the letter", "Sign and send", "First name", "years ago", "Our goal"):
        assert english not in page, english
    # The campaign's own words and the letter stay as written.
    assert "Give every trafficked and unaccompanied child a guardian" in page
    letter = letter_text(page)
    assert "Please help give every trafficked child a guardian" in letter
    assert "Dear [your MP's name]," in letter and "Yours sincerely," in letter
    # Links to the other languages, each named in its own language.
    assert 'href="/c/guardians-for-children?lang=cy" lang="cy" hreflang="cy">Cymraeg</a>' in page
    assert 'href="/c/guardians-for-children?lang=en" lang="en" hreflang="en">English</a>' in page


def test_the_campaign_page_in_welsh_is_remembered(settings, engine) -> None:
    add_update(engine, datetime.now(UTC) - timedelta(days=4 * 365 + 30))
    client = client_for(settings, engine)
    response = client.get(f"{PAGE}?lang=cy")
    assert response.status_code == 200
    assert response.headers["content-language"] == "cy"
    assert f"{i18n.COOKIE}=cy" in response.headers["set-cookie"]
    for text in (
        '<html lang="cy">',
        "Darllen y llythyr",
        "Llofnodwch ac anfonwch y llythyr",
        "o bobl wedi llofnodi",
        "Diweddariad #1",
        "4 o flynyddoedd yn ôl",
        "Enw cyntaf",
    ):
        assert text in response.text, text
    assert "Please help give every trafficked child a guardian" in letter_text(response.text)

    # The cookie carries the choice to the next page, even against the browser's languages.
    later = client.get(PAGE, headers={"Accept-Language": "fr"})
    assert later.headers["content-language"] == "cy" and "Darllen y llythyr" in later.text
    assert i18n.COOKIE not in later.headers.get("set-cookie", "")
    help_page = client.get(f"{PAGE}/help")
    assert "Methu llofnodi? Rhowch wybod i ni" in help_page.text

    back = client.get(f"{PAGE}?lang=en")
    assert back.headers["content-language"] == "en" and "Read the letter" in back.text
    assert "Read the letter" in client.get(PAGE).text


def test_errors_are_shown_in_french(settings, engine) -> None:
    client = client_for(settings, engine)
    french = {"Accept-Language": "fr"}
    token = csrf_token_in(client.get(PAGE, headers=french).text)
    bad = make_signature(first_name="", email="not-an-email", postcode="JE2 3AB")
    form = {**{k: str(v) for k, v in bad.items() if k != "consent"}, "csrf_token": token}
    response = client.post(f"{PAGE}/sign", data=form, headers=french)
    assert response.status_code == 400
    page = response.text
    assert f"<title>Erreur{NBSP}:" in page
    assert "Il y a un problème" in page
    assert error_summary(page) == [
        "Saisissez votre prénom",
        "Saisissez une adresse e-mail au bon format, par exemple nom@example.com",
        f"Jersey n’a pas de député à Westminster{NBSP}: il n’y a donc pas de député à qui "
        "écrire. Cette campagne ne peut envoyer des lettres qu’aux députés de Westminster",
        "Cochez la case pour accepter les conditions d’utilisation et la politique de "
        "confidentialité",
    ]
    assert "Enter your first name" not in page and "There is a problem" not in page
    # The same mistakes in English read as before.
    token = csrf_token_in(client.get(PAGE).text)
    english = client.post(f"{PAGE}/sign", data={**form, "csrf_token": token})
    assert error_summary(english.text)[0] == "Enter your first name"


def test_help_errors_in_welsh(settings, engine) -> None:
    client = client_for(settings, engine)
    token = csrf_token_in(client.get(f"{PAGE}/help?lang=cy").text)
    response = client.post(
        f"{PAGE}/help", data={"csrf_token": token, "email": "", "message": "", "name": "=x"}
    )
    assert response.status_code == 400
    assert error_summary(response.text) == [
        "Ni all eich enw ddechrau gyda = + - neu @",
        "Rhowch eich cyfeiriad e-bost",
        "Dywedwch wrthym beth aeth o’i le",
    ]


def sign_and_confirm(client: TestClient, settings: Settings, engine: sa.Engine) -> tuple[Any, str]:
    """Sign through the API and confirm as the supporter does (open the link in the
    confirmation email, press the button); the signature's id and its thank-you page's token."""
    signed = make_signature(postcode="GU11 1AA")
    response = client.post(f"/api/v1/campaigns/{SLUG}/signatures", json=signed)
    assert response.status_code == 202
    with engine.connect() as conn:
        signature_id = conn.execute(
            sa.text("SELECT id FROM signatures WHERE email = :email"), {"email": signed["email"]}
        ).scalar_one()
    token = make_token(settings.secret_key, "confirm", str(signature_id))
    confirmed = confirm(client, f"/confirm/{token}")
    assert confirmed.status_code == 200 and confirmed.url.path.startswith("/thanks/")
    assert "We are finding your MP." in confirmed.text
    return signature_id, confirmed.url.path.removeprefix("/thanks/")


Journey = SignatureResolved | SignatureUnresolvable | LetterSent | LetterFailed


def deliver(engine: sa.Engine, event: Journey) -> None:
    """What intake's consumer does with an event from the broker: its real handlers."""
    envelope = Envelope.wrap(event, correlation_id=event.signature_id)
    Dispatcher("intake", engine, HANDLERS)(envelope)


SUPPORTER = Supporter(
    first_name="Jo", last_name="Bloggs", email="jo@example.org", postcode="GU11 1AA"
)
ALDERSHOT = Constituency(code="E14000530", name="Aldershot")
MEMBER = Target(name="Real Member", email="real.member.mp@parliament.uk")


def chosen(lang: str) -> dict[str, str]:
    """The headers of a browser whose visitor chose ``lang`` (the cookie ``?lang=`` sets): it
    wins over the language the supporter signed in (which wins over Accept-Language)."""
    return {"Cookie": f"{i18n.COOKIE}={lang}"}


def thanks_page(client: TestClient, token: str, lang: str) -> str:
    response = client.get(f"/thanks/{token}", headers=chosen(lang))
    assert response.status_code == 200
    assert response.headers["content-language"] == lang
    return response.text


def test_the_thank_you_page_translates_why_a_letter_cannot_be_sent(settings, engine) -> None:
    client = client_for(settings, engine)
    signature_id, token = sign_and_confirm(client, settings, engine)
    deliver(
        engine,
        SignatureUnresolvable(
            signature_id=signature_id,
            campaign=SLUG,
            supporter=SUPPORTER,
            reason="no_contact",
            message=REASONS["no_contact"],
        ),
    )
    page = thanks_page(client, token, "fr")
    assert "Nous n’avons pas pu envoyer votre lettre." in page
    assert "Votre député ne publie pas d’adresse e-mail." in page
    assert "Merci d’avoir signé «" in page
    assert "Nous recherchons votre député" not in page

    # A reason this intake has no words for: the page says only that the letter cannot be sent
    # (never gettext(""), which is the catalogue's header).
    other_id, other_token = sign_and_confirm(client, settings, engine)
    deliver(
        engine,
        SignatureUnresolvable(
            signature_id=other_id,
            campaign=SLUG,
            supporter=SUPPORTER,
            reason="a_reason_added_later",
            message="Something new went wrong.",
        ),
    )
    page = thanks_page(client, other_token, "cy")
    assert "Nid oeddem yn gallu anfon eich llythyr." in page
    assert "Project-Id-Version" not in page and "Plural-Forms" not in page
    assert "Something new went wrong." not in page


def test_the_thank_you_page_follows_the_letter_in_french_and_welsh(settings, engine) -> None:
    client = client_for(settings, engine)
    signature_id, token = sign_and_confirm(client, settings, engine)
    assert "Nous recherchons votre député." in thanks_page(client, token, "fr")

    deliver(
        engine,
        SignatureResolved(
            signature_id=signature_id,
            campaign=SLUG,
            supporter=SUPPORTER,
            constituency=ALDERSHOT,
            target=MEMBER,
        ),
    )
    going = "Votre lettre va être envoyée à Real Member, qui représente Aldershot au Parlement."
    page = thanks_page(client, token, "fr")
    assert going in page
    assert "Nous recherchons votre député" not in page and "Elle a été envoyée." not in page

    # The supporter's copy going out says nothing about the letter.
    deliver(engine, LetterSent(signature_id=signature_id, purpose="copy", message_id="<c@x>"))
    assert "Elle a été envoyée." not in thanks_page(client, token, "fr")

    deliver(engine, LetterSent(signature_id=signature_id, purpose="letter", message_id="<l@x>"))
    # Sent: that it went and when, never also that it is going (issue 26).
    page = thanks_page(client, token, "fr")
    assert going not in page and "va être envoyée" not in page
    assert re.search(  # the date the letter went, in French
        r"Le \d{1,2} \w+ \d{4}, votre lettre a été envoyée à Real Member, qui représente "
        r"Aldershot au Parlement\. Nous vous en avons envoyé une copie par e-mail\.",
        page,
    ), page
    page = thanks_page(client, token, "cy")
    assert "yn mynd at" not in page
    assert "aeth eich llythyr at Real Member, AS dros Aldershot." in page
    assert "Rydym wedi anfon copi atoch drwy e-bost." in page


def test_the_thank_you_page_says_when_the_letter_failed(settings, engine) -> None:
    client = client_for(settings, engine)
    signature_id, token = sign_and_confirm(client, settings, engine)
    deliver(
        engine,
        SignatureResolved(
            signature_id=signature_id,
            campaign=SLUG,
            supporter=SUPPORTER,
            constituency=ALDERSHOT,
            target=MEMBER,
        ),
    )
    deliver(
        engine,
        LetterFailed(signature_id=signature_id, purpose="letter", reason="550 mailbox unavailable"),
    )
    page = thanks_page(client, token, "fr")
    assert "Nous n’avons pas pu acheminer votre lettre." in page
    assert "Votre lettre va être envoyée à" not in page
    page = thanks_page(client, token, "cy")
    assert "Nid oeddem yn gallu danfon eich llythyr." in page


# --- templates ------------------------------------------------------------------------------

# Names that are the same in every language.
NOT_TRANSLATED = {"Dear", "MP", "WhatsApp", "Facebook", "Bluesky", "X"}
TEMPLATES = sorted((ROOT / "services" / "intake" / "templates").glob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_untranslated_text(path: Path) -> None:
    """Best effort: visible words and labelling attributes only come from translation calls."""
    source = path.read_text(encoding="utf-8")
    for attribute in re.findall(r'\b(?:aria-label|title|alt|placeholder)="([^"]*)"', source):
        assert not attribute.strip() or attribute.startswith("{{"), f"{path.name}: {attribute}"
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    words = set(re.findall(r"[A-Za-z][A-Za-z']*", html.unescape(text)))
    assert words <= NOT_TRANSLATED, f"{path.name}: {sorted(words - NOT_TRANSLATED)}"


def test_the_thank_you_page_tells_each_state_truthfully(settings, engine) -> None:
    """Never "confirmed" for a signature nobody confirmed; a page that stops looking again after
    a minute and says so; nothing personal once the signature is erased; a fixed target named
    instead of "your MP"."""
    from services.intake.handlers import HANDLERS as INTAKE
    from shared.messages import SupporterErasureRequested

    client = client_for(settings, engine)
    signed = make_signature(postcode="GU11 1AA")
    assert client.post(f"/api/v1/campaigns/{SLUG}/signatures", json=signed).status_code == 202
    with engine.connect() as conn:
        pending_id = conn.execute(
            sa.text("SELECT id FROM signatures WHERE email = :e"), {"e": signed["email"]}
        ).scalar_one()
    pending = thanks_page(client, make_token(settings.secret_key, "thanks", str(pending_id)), "en")
    assert "Check your email" in pending and "Your signature is confirmed" not in pending
    assert "data-refresh" not in pending  # nothing will change until they confirm

    signature_id, token = sign_and_confirm(client, settings, engine)
    waiting = thanks_page(client, token, "en")
    # It looks again (thanks.js, or the "Check again" link), never by reloading itself: a
    # timed refresh fails WCAG 2.2.1.
    assert f'data-refresh="/thanks/{token}?wait=1"' in waiting
    assert 'http-equiv="refresh"' not in waiting
    late = client.get(f"/thanks/{token}?wait=12").text
    assert "data-refresh" not in late
    assert "This is taking longer than usual." in late
    assert (
        "Cela prend plus de temps que d’habitude."
        in client.get(f"/thanks/{token}?wait=12", headers=chosen("fr")).text
    )

    request = Envelope.wrap(
        SupporterErasureRequested(key=supporter_key(settings.secret_key, signed["email"]))
    )
    Dispatcher("intake", engine, INTAKE)(request)
    erased = thanks_page(client, make_token(settings.secret_key, "thanks", str(pending_id)), "cy")
    assert "Mae’r llofnod hwn wedi’i ddileu" in erased
    assert signed["first_name"] not in erased and "Ask others" not in erased

    fixed_slug = "specialist-support-for-child-victims"
    fixed = make_signature(postcode="GU11 1AA")
    assert client.post(f"/api/v1/campaigns/{fixed_slug}/signatures", json=fixed).status_code == 202
    with engine.connect() as conn:
        fixed_id = conn.execute(
            sa.text("SELECT id FROM signatures WHERE email = :e"), {"e": fixed["email"]}
        ).scalar_one()
    fixed_token = make_token(settings.secret_key, "confirm", str(fixed_id))
    button = client.get(f"/confirm/{fixed_token}").text
    assert "We will then send your letter to The Home Secretary." in button
    assert "find your MP" not in button
    page = confirm(client, f"/confirm/{fixed_token}").text
    assert "Your letter is going to The Home Secretary." in page
    assert "finding your MP" not in page
