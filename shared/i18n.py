"""The languages Dear MP speaks to supporters (English, Welsh, French) and their catalogues.

Each service that writes to supporters keeps its own Babel catalogue in
``<service>/locales/<lang>/LC_MESSAGES/messages.po`` (intake for pages, the mailer and updates for
emails), compiled in memory when first used (never commit ``.mo`` files). A supporter's language
is the page's when they signed (or the API's ``language``): it travels with the signature
(``Supporter.language``) so every email to them is written in it. Letters to a target are never
translated: they stay in the campaign's language.

After changing any text, for each service directory ``S`` (``services/intake``,
``services/mailer``, ``services/updates``), from the repository root::

    .venv/bin/pybabel extract -F babel.cfg -k N_ -c TRANSLATORS: --add-location=file \\
        --sort-output --project=dearmp --copyright-holder="Dear MP" -o S/locales/messages.pot S shared
    .venv/bin/pybabel update -i S/locales/messages.pot -d S/locales --no-fuzzy-matching \\
        --ignore-obsolete   # (the first time: pybabel init … -l cy, and -l fr)
    # translate every new or changed entry in cy/ and fr/ (no empty msgstr, no fuzzy), then:
    .venv/bin/pytest -q tests/integration/test_i18n.py tests/unit/test_email_languages.py
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Final

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "cy", "fr")
NAMES = {"en": "English", "cy": "Cymraeg", "fr": "Français"}
DEFAULT: Final = "en"


@lru_cache(maxsize=16)
def translations(locale_dir: Path, locale: str) -> NullTranslations:
    """The catalogue for ``locale`` under ``locale_dir`` (English: the messages as written)."""
    po = locale_dir / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def install(env: jinja2.Environment, catalogue: NullTranslations) -> None:
    """Give a jinja2 environment (with ``jinja2.ext.i18n``) newstyle ``_()`` and ``ngettext()``."""

    def gettext(message: str) -> str:
        # gettext("") is the catalogue's header: an empty message stays empty.
        return catalogue.gettext(message) if message else ""

    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext,
        catalogue.ngettext,
        newstyle=True,
        pgettext=catalogue.pgettext,
        npgettext=catalogue.npgettext,
    )


@lru_cache(maxsize=16)
def email_templates(template_dir: Path, locale_dir: Path, language: str) -> jinja2.Environment:
    """A service's own email templates (shipped with the code: no stat() per message) in one
    language: strict, HTML parts escaped, ``_()`` from the service's catalogue."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html"]),
        keep_trailing_newline=True,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    install(env, translations(locale_dir, language))
    return env
