"""Dates and times as a reader in the UK expects them, in their language (Babel): the one helper
for every date and time a supporter reads.

English is British English (``en_GB``: "7 December 2026", "22:50"); Babel's plain ``en`` is
American ("December 7, 2026", "10:50:43 PM"). A moment (a ``datetime``) is shown as it was in
the UK (Europe/London); a naive one is taken as UTC. A ``date`` is shown as it is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

UK = ZoneInfo("Europe/London")


def babel_locale(language: str) -> str:
    """The Babel locale for one of our languages: English is British English."""
    return "en_GB" if language == "en" else language


def in_the_uk(value: datetime) -> datetime:
    """The moment as a clock in the UK showed it (naive: taken as UTC)."""
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UK)


def long_date(value: date | datetime, language: str) -> str:
    """ "7 December 2026", "7 décembre 2026", "7 Rhagfyr 2026" (a moment: its day in the UK)."""
    day = in_the_uk(value).date() if isinstance(value, datetime) else value
    return format_date(day, format="long", locale=babel_locale(language))


def uk_time(value: datetime, language: str) -> str:
    """The time of day in the UK, on the 24-hour clock: "22:50"."""
    return format_time(in_the_uk(value), format="short", locale=babel_locale(language))
