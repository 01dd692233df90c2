r"""Languages for the public pages: English, Welsh and French (Babel).

The language comes from ``?lang=`` (remembered in a cookie), then the cookie, then, on the pages
of one signature (confirm, thank-you), the language it was signed in (a link opened from a mail
app carries no cookie: the French email leads to a French page), then the browser's
Accept-Language. Dates and times go through ``shared.dates`` (English is en-GB). Catalogues
live in ``locales/<lang>/LC_MESSAGES/messages.po`` and are compiled in memory when first used
(never commit ``.mo`` files). Letters are never translated: they stay in
the campaign's language.

Templates use ``_()`` and ``ngettext()`` (newstyle gettext: ``_("Up to %(limit)s", limit=3)``).
Messages kept in English in Python (form errors, unresolvable reasons) are marked with
``shared.i18n_markers.N_`` and translated when rendered, so they must be literals.

After changing any text, rebuild the catalogue with the commands in ``shared/i18n.py``.

A new language: ``.venv/bin/pybabel init -i services/intake/locales/messages.pot
-d services/intake/locales -l <lang>``, translate it, then add it to ``shared.i18n.LANGUAGES`` and ``NAMES`` and to
``Supporter.language``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import cast

import jinja2
from babel import Locale
from babel.dates import format_timedelta
from babel.numbers import format_decimal
from babel.support import NullTranslations
from fastapi import Request

from shared import i18n
from shared.dates import babel_locale, long_date, uk_time
from shared.messages import Language

LOCALES = i18n.LANGUAGES
NAMES = i18n.NAMES
DEFAULT = i18n.DEFAULT
COOKIE = "dearmp_lang"
LOCALE_DIR = Path(__file__).parent / "locales"
TEMPLATE_DIR = Path(__file__).parent / "templates"


def pick_locale(request: Request, signed_in: str | None = None) -> Language:
    """``?lang=``, the cookie (an explicit choice), ``signed_in`` (the language of the signature
    the page is about), then Accept-Language."""
    for asked in (request.query_params.get("lang"), request.cookies.get(COOKIE), signed_in):
        if asked in LOCALES:
            return cast(Language, asked)
    preferred = accepted_languages(request.headers.get("accept-language", ""))
    chosen = Locale.negotiate(preferred, list(LOCALES), sep="_") if preferred else None
    return cast(Language, chosen.language if chosen else DEFAULT)


def accepted_languages(header: str) -> list[str]:
    """Language tags from an Accept-Language header, most wanted first (``q=0``: not wanted)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, *params = part.split(";")
        tag = tag.strip().replace("-", "_")
        quality = 1.0
        for param in params:
            name, sep, value = param.partition("=")
            if sep and name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag))
    return [tag for _quality, _index, tag in sorted(weighted)]


def translations(locale: str) -> NullTranslations:
    return i18n.translations(LOCALE_DIR, locale)


def relative_date(value: datetime, locale: str, now: datetime | None = None) -> str:
    """ "4 years ago", "il y a 4 ans", "4 o flynyddoedd yn ôl". Naive datetimes are taken as UTC."""
    now = now or datetime.now(UTC)
    delta = _aware(value) - _aware(now)
    return format_timedelta(delta, add_direction=True, locale=babel_locale(locale), threshold=1.0)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=len(LOCALES))
def environment(locale: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.ChainableUndefined,
    )
    i18n.install(env, translations(locale))
    env.filters["reldate"] = lambda value: relative_date(value, locale)
    env.filters["number"] = lambda value: format_decimal(value, locale=locale)
    # Every date and time on a page: its day and time in the UK, in the page's language.
    env.filters["ukdate"] = lambda value: long_date(value, locale)
    env.filters["uktime"] = lambda value: uk_time(value, locale)
    env.globals.update(locale=locale, locales=LOCALES, locale_names=NAMES)
    return env
