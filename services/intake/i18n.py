"""Languages for the public pages: English, Welsh and French (Babel).

The language comes from ``?lang=`` (remembered in a cookie) or the browser's Accept-Language.
Catalogues live in ``locales/<lang>/LC_MESSAGES/messages.po`` and are compiled in memory when
first used. Letters are never translated: they stay in the campaign's language.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.dates import format_date, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from fastapi import Request

LOCALES = ("en", "cy", "fr")
NAMES = {"en": "English", "cy": "Cymraeg", "fr": "Français"}
DEFAULT = "en"
COOKIE = "dearmp_lang"
LOCALE_DIR = Path(__file__).parent / "locales"
TEMPLATE_DIR = Path(__file__).parent / "templates"


def pick_locale(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(COOKIE)
    if asked in LOCALES:
        return str(asked)
    header = request.headers.get("accept-language", "")
    preferred = []
    for part in header.split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag:
            preferred.append(tag)
    chosen = Locale.negotiate(preferred, list(LOCALES), sep="_") if preferred else None
    return str(chosen.language) if chosen else DEFAULT


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def relative_date(value: datetime, locale: str, now: datetime | None = None) -> str:
    """ "4 years ago", "il y a 4 ans"…"""
    delta = value - (now or datetime.now(UTC))
    return format_timedelta(delta, add_direction=True, locale=locale, threshold=1.0)


@lru_cache(maxsize=len(LOCALES))
def environment(locale: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.ChainableUndefined,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["reldate"] = lambda value: relative_date(value, locale)
    env.filters["longdate"] = lambda value: format_date(value, format="long", locale=locale)
    env.filters["number"] = lambda value: format_decimal(value, locale=locale)
    env.globals.update(locale=locale, locales=LOCALES, locale_names=NAMES)
    return env
